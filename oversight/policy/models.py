"""Policy: what each agent may do (grants), its boundaries (rules), and blast-radius limits."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from oversight.accounts.models import Team
from oversight.accounts.roles import ALL_ROLES
from oversight.agents.models import Agent
from oversight.policy.constants import (
    DEFAULT_HOLD_SECONDS,
    DEFAULT_UNDO_WINDOW_SECONDS,
    MAX_APPROVALS,
    MAX_HOLD_SECONDS,
    MAX_UNDO_WINDOW_SECONDS,
    Approvers,
    Effect,
    OnExceed,
    Reversibility,
)


def seconds_between(
    low: int, high: int | None = None
) -> list[MinValueValidator | MaxValueValidator]:
    """A duration's bounds, in seconds, saying their unit: a manifest writes durations as
    ``10s`` or ``15m``, so a bare "greater than or equal to 30" would not say of what."""
    bounds: list[MinValueValidator | MaxValueValidator] = [
        MinValueValidator(low, f"Ensure this is at least {_seconds(low)}.")
    ]
    if high is not None:
        bounds.append(MaxValueValidator(high, f"Ensure this is at most {_seconds(high)}."))
    return bounds


def _seconds(count: int) -> str:
    return "1 second" if count == 1 else f"{count:,} seconds"


MAX_WINDOW = 366 * 24 * 3600  # a limit's longest window: a year


class Grant(models.Model):
    """Least privilege: the agent may do actions matching ``action`` on resources matching
    ``resource``. Without a matching grant (or permit rule) an action is denied."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="grants")
    action = models.CharField(max_length=200)
    resource = models.CharField(max_length=500, default="*")
    expires_at = models.DateTimeField(null=True, blank=True)
    # The reversibility contract: what the granted actions are (blank: not said). A
    # reversible grant names its compensation: the undo action, its params as CEL over the
    # original's params, before and after, and how long after the action undo is offered.
    reversibility = models.CharField(
        max_length=12, blank=True, choices=Reversibility.choices, default=""
    )
    undo_action = models.CharField(max_length=200, blank=True)
    undo_params = models.JSONField(default=dict, blank=True)
    undo_window_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=seconds_between(60, MAX_UNDO_WINDOW_SECONDS),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["action", "resource"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "action", "resource"], name="grant_unique")
        ]

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}"

    def clean(self) -> None:
        """A reversible grant names its compensation; the others have none."""
        errors: dict[str, str] = {}
        if self.reversibility == Reversibility.REVERSIBLE:
            if not self.undo_action:
                errors["undo_action"] = "A reversible grant names the action that undoes it."
            if self.undo_window_seconds is None:
                self.undo_window_seconds = DEFAULT_UNDO_WINDOW_SECONDS
        elif self.undo_action or self.undo_params or self.undo_window_seconds is not None:
            errors["reversibility"] = "Only a reversible grant has a compensation."
        if errors:
            raise ValidationError(errors)


class Rule(models.Model):
    """A boundary: permit, forbid or hold matching actions, when the CEL condition holds."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=120)
    effect = models.CharField(max_length=10, choices=Effect.choices)
    action = models.CharField(max_length=200, default="*")
    resource = models.CharField(max_length=500, default="*")
    condition = models.TextField(blank=True, help_text="CEL, e.g. params.amount > 500")
    approvals = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_APPROVALS)]
    )
    expires_in_seconds = models.PositiveIntegerField(
        default=DEFAULT_HOLD_SECONDS,
        validators=seconds_between(30, MAX_HOLD_SECONDS),
    )
    separation_of_duties = models.BooleanField(
        default=False, help_text="The agent's owner may not approve what this rule holds."
    )
    edits_allowed = models.BooleanField(
        default=True,
        help_text="A reviewer may change the params of what this rule holds and approve that.",
    )
    # Who approves (hold only): see oversight/approvals/eligibility.py, the one place that
    # reads these, and docs/decisions/0018-explicit-approvers.md.
    approvers = models.CharField(max_length=20, choices=Approvers.choices, default=Approvers.ACCESS)
    approver_role = models.CharField(max_length=20, blank=True)
    approver_people = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    # What every rule matches on, and what only a hold rule uses: who approves, how many,
    # by when, and edits. The forms, manifests and releases list their fields from these.
    MATCH_FIELDS = ("effect", "action", "resource", "condition")
    HOLD_ONLY_FIELDS = (
        "approvals",
        "expires_in_seconds",
        "separation_of_duties",
        "edits_allowed",
        "approvers",
        "approver_role",
        "approver_people",
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="rule_name_unique")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.approvers == Approvers.ROLE and self.approver_role not in ALL_ROLES:
            raise ValidationError({"approver_role": f"Choose a role: {', '.join(ALL_ROLES)}."})
        if self.approvers != Approvers.ROLE:
            self.approver_role = ""


class Limit(models.Model):
    """Blast radius: at most ``max_count`` matching actions, and/or a sum of the numeric
    param ``sum_param`` of at most ``max_sum``, per fixed window.

    Attached to an agent, the limit counts that agent's actions; attached to a team, all
    the team's agents together; attached to neither, everyone's.
    """

    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="limits"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="limits"
    )
    name = models.CharField(max_length=120)
    action = models.CharField(max_length=200, default="*")
    resource = models.CharField(max_length=500, default="*")
    window_seconds = models.PositiveIntegerField(validators=seconds_between(1, MAX_WINDOW))
    max_count = models.PositiveIntegerField(null=True, blank=True)
    sum_param = models.CharField(max_length=64, blank=True)
    max_sum = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0, "Ensure this is not negative.")],
    )
    on_exceed = models.CharField(max_length=10, choices=OnExceed.choices, default=OnExceed.DENY)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~(models.Q(agent__isnull=False) & models.Q(team__isnull=False)),
                name="limit_one_scope",
            ),
            models.CheckConstraint(
                condition=models.Q(max_count__isnull=False) | models.Q(max_sum__isnull=False),
                name="limit_has_a_maximum",
                violation_error_message="Give a maximum count, a maximum sum, or both.",
            ),
            models.CheckConstraint(
                condition=models.Q(max_sum__isnull=True, sum_param="")
                | (models.Q(max_sum__isnull=False) & ~models.Q(sum_param="")),
                name="limit_sum_needs_param",
                violation_error_message=(
                    "A maximum sum needs the param it sums, and a summed param its maximum."
                ),
            ),
            # One name per scope, as a manifest keys them (its limits by name).
            *(
                models.UniqueConstraint(
                    fields=[*scope, "name"],
                    condition=condition,
                    name=f"limit_name_unique_{label}",
                    violation_error_message="A limit of this name exists here already.",
                )
                for label, scope, condition in (
                    ("agent", ["agent"], models.Q(agent__isnull=False)),
                    ("team", ["team"], models.Q(team__isnull=False)),
                    ("everyone", [], models.Q(agent__isnull=True, team__isnull=True)),
                )
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def scope(self) -> str:
        return "agent" if self.agent_id else "team" if self.team_id else "everyone"


class LimitCounter(models.Model):
    """Usage of one limit in one window; changed only by conditional UPDATE ... RETURNING."""

    limit = models.ForeignKey(Limit, on_delete=models.CASCADE, related_name="counters")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    total = models.DecimalField(max_digits=24, decimal_places=4, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["limit", "window_start"], name="counter_unique_window")
        ]

    def __str__(self) -> str:
        return f"{self.limit} @ {self.window_start:%Y-%m-%d %H:%M}"
