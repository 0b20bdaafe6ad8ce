"""Votes of people on held actions."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from oversight.gateway.models import Action


class Vote(models.TextChoices):
    APPROVE = "approve", "Approve"
    DENY = "deny", "Deny"


class ApprovalVote(models.Model):
    """One person's vote on one held action; a person votes once."""

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    vote = models.CharField(max_length=10, choices=Vote.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["action", "voter"], name="one_vote_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.voter} {self.vote}s {self.action_id}"
