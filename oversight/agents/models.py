"""The agent registry."""

from __future__ import annotations

import datetime as dt

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
    AlertResponse,
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
    # Monitoring: the automatic response to a serious alert, and whether it is in force
    # (every action held for a human until the alerts that set it are resolved).
    alert_response = models.CharField(
        max_length=10, choices=AlertResponse.choices, default=AlertResponse.HOLD
    )
    hold_all = models.BooleanField(default=False)
    hold_all_reason = models.CharField(max_length=300, blank=True)
    # The actions of tools whose definition changed since it was pinned (ToolPin): each
    # call is held until an owner accepts the new definition. Kept on the agent's row so
    # the decision reads it with the credentials, and a change alters their fingerprint.
    changed_tools = models.JSONField(default=list, blank=True)
    # Ownership and retirement: set when the owner's account was deactivated (cleared when
    # someone takes the agent over), when the owner was told of coming retirement for
    # inactivity, and when the agent was retired.
    unowned_since = models.DateTimeField(null=True, blank=True)
    retirement_notice_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Bumped in the same transaction as any change to the agent's grants, rules or limits
    # (or its team's or everyone's limits); compiled policies are cached by it.
    policy_version = models.PositiveIntegerField(default=1)
    # Its config, part of each release (oversight/releases): what the agent is told, the
    # model it runs on and its settings, and its tools (name, description, input schema).
    instructions = models.TextField(blank=True)
    model_name = models.CharField("model", max_length=200, blank=True)
    model_settings = models.JSONField(default=dict, blank=True)
    tools = models.JSONField(default=list, blank=True)
    # The release in force and its version (kept together by releases/services.py): every
    # decision is decided under it and records the version, read from this row.
    stable_release = models.ForeignKey(
        "releases.Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stable_version = models.PositiveIntegerField(null=True, blank=True)
    # The release the agent's working copy (its config fields, grants and rules) was last
    # found equal to (releases/services.py): the next release's parent. After a candidate
    # is rolled back the working copy is put back to stable, so the next change is made
    # from stable, not from the rejected candidate, which is newer.
    working_release = models.ForeignKey(
        "releases.Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A rollout in progress (kept with its Rollout row by releases/rollouts.py): the
    # candidate, its stage (staging, shadow or canary; blank when none decides), and the
    # share of sessions it decides in a canary, in basis points (100 = 1%).
    # Undo (docs/rewind.md): where Oversight sends this agent's compensations to be run,
    # signed with its team's webhook secret (blank: its team's webhook, or its SDK worker).
    compensation_webhook_url = models.URLField(
        "compensation webhook URL",
        max_length=500,
        blank=True,
        help_text="Runs this agent's undos; blank: its team's, or its own SDK worker.",
    )
    candidate_release = models.ForeignKey(
        "releases.Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    candidate_version = models.PositiveIntegerField(null=True, blank=True)
    rollout_stage = models.CharField(max_length=10, blank=True)
    canary_share = models.PositiveIntegerField(default=0)
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

    def paused_for_review(self, today: dt.date) -> bool:
        """Its re-certification is overdue past its team's limit: reviews pause it, and it
        is not set active again until someone re-certifies it."""
        return (today - self.next_review_due).days > self.team.review_pause_after_days

    def clean(self) -> None:
        envs = self.environments
        if not isinstance(envs, list) or not envs:
            raise ValidationError({"environments": "Choose at least one environment."})
        unknown = sorted(set(envs) - set(Environment.values))
        if unknown:
            raise ValidationError({"environments": f"Unknown environment: {', '.join(unknown)}."})
        if not isinstance(self.model_settings, dict):
            raise ValidationError({"model_settings": "Model settings are a JSON object."})
        problem = tools_problem(self.tools)
        if problem:
            raise ValidationError({"tools": problem})


def tools_problem(tools: object) -> str:
    """Why ``tools`` is not a list of {name, description, input_schema}, or ""."""
    if not isinstance(tools, list):
        return "Tools are a JSON list."
    names = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or set(tool) != {"name", "description", "input_schema"}:
            return f"Tool {index + 1}: give exactly name, description and input_schema."
        if not isinstance(tool["name"], str) or not tool["name"].strip():
            return f"Tool {index + 1}: the name is a non-empty string."
        if not isinstance(tool["description"], str):
            return f"Tool {index + 1}: the description is a string."
        if not isinstance(tool["input_schema"], dict):
            return f"Tool {index + 1}: the input schema is a JSON object."
        if tool["name"] in names:
            return f"Tool {tool['name']} is listed twice."
        names.add(tool["name"])
    return ""


class AgentToken(models.Model):
    """A bearer credential for one agent in one environment. Only its SHA-256 is stored;
    the token itself is shown once, when it is created."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tokens")
    environment = models.CharField(max_length=12, choices=Environment.choices)
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(
        max_length=24, help_text="The first characters, to tell tokens apart."
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["agent", "environment"])]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.environment})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ToolPin(models.Model):
    """An MCP tool as the agent first saw it (pinned by the hash of its description and
    input schema), and a different definition seen since, held until an owner accepts it.

    A defence against tools that change under an agent: a server that swaps a tool's
    description or schema cannot have its calls go through unreviewed."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tool_pins")
    server = models.CharField(max_length=100)
    tool = models.CharField(max_length=200)
    action = models.CharField(max_length=200)
    definition = models.JSONField()  # {"description": ..., "input_schema": ...}
    definition_hash = models.CharField(max_length=64)
    # A definition seen since that differs from the pinned one; empty when none.
    changed_definition = models.JSONField(null=True, blank=True)
    changed_hash = models.CharField(max_length=64, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["server", "tool"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "action"], name="toolpin_one_per_action")
        ]

    def __str__(self) -> str:
        return f"{self.server}/{self.tool} ({self.action})"

    @property
    def changed(self) -> bool:
        return bool(self.changed_hash)


class AgentUserObjectPermission(UserObjectPermissionBase):
    """guardian: a user's permission on one agent (direct foreign key)."""

    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE)


class AgentGroupObjectPermission(GroupObjectPermissionBase):
    """guardian: a group's permission on one agent (direct foreign key)."""

    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE)
