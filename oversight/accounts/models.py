"""Teams. A team's members are the users of its permission group."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from oversight.agents.constants import RiskTier


def _days(default: int, *, minimum: int = 0, help_text: str) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        default=default,
        validators=[MinValueValidator(minimum), MaxValueValidator(3650)],
        help_text=help_text,
    )


class Team(models.Model):
    """A group of people who own and run agents together.

    Membership is the team's Django group, so guardian permissions granted to
    the group (``view_agent`` on each of the team's agents) reach every member
    without a second list to keep in step.
    """

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team")
    # The team's reviewers: a group of its own, granted view and approve on each of the
    # team's agents (oversight/agents/permissions.py), so "who may approve" stays one
    # guardian question. Made when the first reviewer is added.
    reviewers_group = models.OneToOneField(
        Group, null=True, blank=True, on_delete=models.PROTECT, related_name="reviewing_team"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Reviews, ownership and retirement: the periodic jobs read these per team.
    review_reminder_days = _days(7, help_text="Remind the owner this many days before a review.")
    review_grace_days = _days(
        7, help_text="Tell the team's admins once a review is overdue by more than this."
    )
    review_pause_after_days = _days(
        30, minimum=1, help_text="Pause the agent once its review is overdue by more than this."
    )
    owner_grace_days = _days(
        7, help_text="Pause an agent this long after its owner was deactivated, unless taken over."
    )
    inactivity_retire_days = _days(
        90, minimum=1, help_text="Retire an agent after this many days without an action."
    )
    retirement_notice_days = _days(
        14, help_text="Tell the owner this many days before retiring an agent for inactivity."
    )
    # Releases (oversight/releases): from this risk tier up, a change to an agent is not
    # promoted at once but needs another person's approval and a staged rollout. Blank:
    # every change is promoted at once.
    staged_releases_from = models.CharField(
        "staged releases from risk tier",
        max_length=10,
        blank=True,
        choices=[("", "never (promote at once)"), *RiskTier.choices],
        help_text="Agents at this risk tier or above need an approved, staged rollout.",
    )

    # Provenance: a link to an action's trace in the team's tracing tool, "{trace_id}"
    # replaced by the trace id of the traceparent the agent sent.
    trace_url = models.CharField(
        "trace link",
        max_length=500,
        blank=True,
        help_text="e.g. https://tracing.example.com/trace/{trace_id}",
    )
    # Rewind (docs/rewind.md): every grant of the team's agents must say what its actions
    # are (read, reversible with a compensation, or irreversible).
    require_reversibility = models.BooleanField(
        default=False, help_text="Every grant must say whether its actions can be undone."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.trace_url and (
            "{trace_id}" not in self.trace_url or not self.trace_url.startswith("https://")
        ):
            raise ValidationError({"trace_url": "An https URL with {trace_id} in it."})
        if self.review_pause_after_days < self.review_grace_days:
            raise ValidationError(
                {"review_pause_after_days": "Pause no sooner than the admins are told."}
            )
        if self.retirement_notice_days >= self.inactivity_retire_days:
            raise ValidationError(
                {"retirement_notice_days": "The notice must come after some days of inactivity."}
            )

    @property
    def members(self) -> Any:
        return self.group.user_set

    @property
    def reviewers(self) -> Any:
        """The team's reviewers (active or not), by username."""
        from django.contrib.auth import get_user_model

        if self.reviewers_group_id is None:
            return get_user_model().objects.none()
        return self.reviewers_group.user_set.order_by("username")


class PersonalToken(models.Model):
    """A person's bearer credential for the approvals API (a CLI, a chat bot). Only its
    SHA-256 is stored; the token is shown once, when it is created. It acts as its person:
    it may decide exactly what she may decide in the browser, and nothing an agent does."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personal_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(
        max_length=24, help_text="The first characters, to tell tokens apart."
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
