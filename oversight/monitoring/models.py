"""Per-minute activity rollups of each agent, the resource families it has touched, and alerts."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from oversight.agents.models import Agent
from oversight.monitoring.constants import AlertKind, AlertStatus, Severity


class AgentMinute(models.Model):
    """One agent's activity in one minute (``minute`` is its start, UTC), recomputed from
    the gateway's actions by the monitoring job. Minutes without actions have no row."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="minutes")
    minute = models.DateTimeField()
    actions = models.PositiveIntegerField(default=0)
    allowed = models.PositiveIntegerField(default=0)
    denied = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    distinct_resources = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["agent", "minute"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "minute"], name="agentminute_unique")
        ]
        indexes = [models.Index(fields=["minute"], name="agentminute_minute")]

    def __str__(self) -> str:
        return f"{self.agent_id} @ {self.minute:%Y-%m-%d %H:%M}: {self.actions}"


class ResourceFamily(models.Model):
    """A resource family (see ``oversight.monitoring.families``) the agent has touched,
    with the first action that touched it."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="resource_families")
    family = models.CharField(max_length=500)
    first_seen_at = models.DateTimeField()
    first_action_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["agent", "family"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "family"], name="resourcefamily_unique")
        ]

    def __str__(self) -> str:
        return self.family


class Alert(models.Model):
    """Something unusual an agent did. One unresolved alert per agent and ``dedupe_key``:
    while the condition goes on, detection updates it (``count``, ``last_seen_at``)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=14, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    title = models.CharField(max_length=200)
    # The numbers that crossed the threshold and the ids of the actions behind them.
    evidence = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=600)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # When monitoring resolved it itself, what cleared; blank when a person did (who:
    # resolved_by, empty again should her account be deleted).
    resolved_why = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            # The backstop of de-duplication: two detector runs cannot both open one.
            models.UniqueConstraint(
                fields=["agent", "dedupe_key"],
                condition=~models.Q(status="resolved"),
                name="alert_one_unresolved_per_key",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-last_seen_at"], name="alert_status_recent"),
            models.Index(fields=["agent", "-last_seen_at"], name="alert_agent_recent"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_unresolved(self) -> bool:
        return self.status != AlertStatus.RESOLVED
