"""Bulk rewind: undo everything an agent did in a window, newest first, as a plan first."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from oversight.agents.models import Agent
from oversight.gateway.models import Action


class RewindState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class Rewind(models.Model):
    """A chosen window of an agent's actions and the plan to undo them. Its items are made
    with the plan and never change membership, so a restart resumes the same plan."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="rewinds")
    since = models.DateTimeField()
    until = models.DateTimeField()
    release_version = models.PositiveIntegerField(null=True, blank=True)
    session_id = models.CharField(max_length=100, blank=True)
    resource = models.CharField(max_length=500, default="*")  # a resource pattern
    state = models.CharField(max_length=20, choices=RewindState.choices)
    summary = models.JSONField(default=dict)  # the plan's counts, by class and by outcome
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # While a runner's step is under way (runner.rewind_step): one step at a time per rewind.
    # A step that dies leaves it to run out.
    stepping_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"rewind of {self.agent.slug} since {self.since:%Y-%m-%d %H:%M}"


class ItemState(models.TextChoices):
    PENDING = "pending", "To undo"
    REQUESTED = "requested", "Undo asked for"
    DONE = "done", "Done"
    LEFT = "left", "Left as it is"  # cannot be undone: said in the plan


class RewindItem(models.Model):
    """One action of a rewind: what would be done with it, and what was."""

    rewind = models.ForeignKey(Rewind, on_delete=models.CASCADE, related_name="items")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="+")
    # Newest first: the order they are undone in (actions on one resource strictly so).
    position = models.PositiveIntegerField()
    resource = models.CharField(max_length=500)
    state = models.CharField(max_length=10, choices=ItemState.choices)
    compensation = models.ForeignKey(
        Action, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # undone, conflict, not_reversible, failed, skipped (compensator); or why it was left
    # or not undone: irreversible, unknown, read, window_closed, denied, rejected, ...
    outcome = models.CharField(max_length=20, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["rewind", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rewind", "action"], name="rewind_item_once"),
            models.UniqueConstraint(fields=["rewind", "position"], name="rewind_item_position"),
        ]
        indexes = [models.Index(fields=["rewind", "state", "position"])]

    def __str__(self) -> str:
        return f"#{self.position} {self.state} {self.outcome}".strip()
