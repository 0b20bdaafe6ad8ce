"""The agent registry."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from oversight.accounts.models import Team
from oversight.agents.constants import (
    DEFAULT_REVIEW_INTERVAL_DAYS,
    MAX_REVIEW_INTERVAL_DAYS,
    AgentStatus,
    Environment,
    RiskTier,
)


def _default_environments() -> list[str]:
    return [Environment.STAGING.value]


class Agent(models.Model):
    """An AI agent allowed to act on live systems, with a named, accountable owner."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    purpose = models.TextField(help_text="What the agent is for, in a sentence or two.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_agents"
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="agents")
    environments = models.JSONField(default=_default_environments)
    status = models.CharField(
        max_length=10, choices=AgentStatus.choices, default=AgentStatus.ACTIVE
    )
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.MEDIUM)
    review_interval_days = models.PositiveIntegerField(
        default=DEFAULT_REVIEW_INTERVAL_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_REVIEW_INTERVAL_DAYS)],
    )
    next_review_due = models.DateField()
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("approve_agent", "Can approve the agent's held actions")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(review_interval_days__gte=1),
                name="agent_review_interval_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=AgentStatus.values), name="agent_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["team", "status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def review_overdue(self) -> bool:
        return self.next_review_due < timezone.localdate()

    def clean(self) -> None:
        envs = self.environments
        if not isinstance(envs, list) or not envs:
            raise ValidationError({"environments": "Choose at least one environment."})
        unknown = sorted(set(envs) - set(Environment.values))
        if unknown:
            raise ValidationError({"environments": f"Unknown environment: {', '.join(unknown)}."})


class AgentUserObjectPermission(UserObjectPermissionBase):
    """guardian: a user's permission on one agent (direct foreign key)."""

    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE)


class AgentGroupObjectPermission(GroupObjectPermissionBase):
    """guardian: a group's permission on one agent (direct foreign key)."""

    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE)
