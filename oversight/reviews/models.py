"""Reviews: an owner re-certifying an agent on schedule, kept for history."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from oversight.agents.models import Agent
from oversight.reviews.constants import ReviewOutcome


class Review(models.Model):
    """One review of one agent. Open (no outcome yet) while the reviewer works through the
    page, removing grants; closed with an outcome. At most one open review per agent."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="reviews")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=ReviewOutcome.choices, blank=True)
    purpose_confirmed = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    # [{"id", "action", "resource", "uses_90d"}] for each grant removed during the review.
    grants_removed = models.JSONField(default=list, blank=True)
    next_review_due = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"],
                condition=models.Q(completed_at__isnull=True),
                name="review_one_open_per_agent",
            ),
            models.CheckConstraint(
                condition=models.Q(completed_at__isnull=True, outcome="")
                | (models.Q(completed_at__isnull=False) & ~models.Q(outcome="")),
                name="review_outcome_when_completed",
            ),
        ]

    def __str__(self) -> str:
        return f"Review of {self.agent} ({self.outcome or 'open'})"

    @property
    def is_open(self) -> bool:
        return self.completed_at is None
