"""Kill switches: engaged, they halt every decision in their scope."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from oversight.accounts.models import Team
from oversight.agents.models import Agent


class Scope(models.TextChoices):
    GLOBAL = "global", "Everything"
    TEAM = "team", "Team"
    AGENT = "agent", "Agent"


class KillSwitch(models.Model):
    """One row per scope target; its history is in the audit log."""

    scope = models.CharField(max_length=10, choices=Scope.choices)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    engaged = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "kill switches"  # not "kill switchs" (the admin's list)
        constraints = [
            models.UniqueConstraint(
                fields=["scope"], condition=models.Q(scope="global"), name="killswitch_one_global"
            ),
            models.UniqueConstraint(fields=["team"], name="killswitch_one_per_team"),
            models.UniqueConstraint(fields=["agent"], name="killswitch_one_per_agent"),
            models.CheckConstraint(
                condition=models.Q(scope="global", team__isnull=True, agent__isnull=True)
                | models.Q(scope="team", team__isnull=False, agent__isnull=True)
                | models.Q(scope="agent", team__isnull=True, agent__isnull=False),
                name="killswitch_scope_matches_target",
            ),
        ]
        indexes = [
            models.Index(
                fields=["engaged"], condition=models.Q(engaged=True), name="killswitch_engaged"
            )
        ]

    def __str__(self) -> str:
        target = self.team or self.agent or "everything"
        return f"kill switch for {target} ({'engaged' if self.engaged else 'released'})"
