"""Votes of people on held actions."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from oversight.gateway.models import Action

# A vote's comment, at most (the agent receives it; the API says so in its document).
MAX_COMMENT = 2000


class Vote(models.TextChoices):
    APPROVE = "approve", "Approve"
    DENY = "deny", "Deny"


VOTED = {Vote.APPROVE: "approved", Vote.DENY: "denied"}  # "rita denied: ..."


class ApprovalVote(models.Model):
    """One person's vote on one held action; a person votes once on each version of its
    params. An approval with edits carries the params it approved (``params``); it makes
    the approvals cast before it ``superseded``: they approved something else."""

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    vote = models.CharField(max_length=10, choices=Vote.choices)
    comment = models.TextField(blank=True)
    params = models.JSONField(null=True, blank=True)
    superseded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["action", "voter"],
                condition=models.Q(superseded=False),
                name="one_current_vote_per_person",
            )
        ]

    def __str__(self) -> str:
        return f"{self.voter} {self.vote}s {self.action_id}"

    @property
    def voted(self) -> str:
        """The vote as a verb in the past: "approved", "denied"."""
        return VOTED[Vote(self.vote)]
