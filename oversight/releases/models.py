"""Releases: immutable, content-addressed versions of what an agent is and may do."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from oversight.agents.models import Agent
from oversight.releases.guard_stats import JUDGED_FROM


class ImmutableReleaseError(Exception):
    """A saved release was about to change: releases are never edited."""


ROLLBACK_NOTES = "rollback to v"  # a rollback's release: its notes, before the version
# The guard's rates over every decision: a stage is judged once stable and the candidate
# each have JUDGED_FROM decisions on these (the other rates count only the actions
# reviewed or reported, and are judged when they have enough).
JUDGED_ON = ("deny rate", "hold rate")


class Release(models.Model):
    """One version of an agent: its config (instructions, model, model settings, tools)
    and its grants and rules, as canonical JSON (``content``) addressed by its SHA-256
    (``digest``). Limits are not in it: they stay on the agent, team and everyone, shared
    by every release. Never updated; a change is a new release whose parent is the one it
    was made from."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="releases")
    version = models.PositiveIntegerField()
    digest = models.CharField(max_length=64)
    content = models.JSONField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.RESTRICT, related_name="children"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notes = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "version"], name="release_version_unique")
        ]
        indexes = [models.Index(fields=["agent", "digest"])]

    def __str__(self) -> str:
        return f"v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ImmutableReleaseError(f"Release {self.pk} is immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableReleaseError("Releases are never deleted (only with their agent).")


class Stage(models.TextChoices):
    """Where a rollout's candidate decides, in order."""

    STAGING = "staging", "Staging"  # staging tokens decide under it
    SHADOW = "shadow", "Shadow"  # evaluated beside stable, never enforced
    CANARY = "canary", "Canary"  # a sticky share of sessions decides under it
    FULL = "full", "Full"  # promoted: the candidate is the stable release


class RolloutState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    ROLLED_BACK = "rolled_back", "Rolled back"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


LIVE_STATES = (RolloutState.AWAITING_APPROVAL, RolloutState.RUNNING, RolloutState.PAUSED)
DEFAULT_PLAN = [1, 10, 50, 100]  # canary shares, percent; 100 means full
DEFAULT_MIN_DECISIONS = 200


class Rollout(models.Model):
    """One candidate release on its way to becoming stable, stage by stage, under guard.

    At most one is live (awaiting approval, running or paused) per agent. While it runs,
    the agent's row carries the candidate and its stage (what the decision path reads);
    rollouts.py keeps the two together."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="rollouts")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="rollouts")
    # The stable release when it started: what the candidate is compared with.
    baseline = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=20, choices=RolloutState.choices)
    stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.STAGING)
    plan = models.JSONField(default=list)  # canary shares in percent, e.g. [1, 10, 50, 100]
    step = models.PositiveSmallIntegerField(default=0)  # index into plan while in canary
    min_decisions = models.PositiveIntegerField(default=DEFAULT_MIN_DECISIONS)
    auto_advance = models.BooleanField(default=True)
    needs_approval = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stage_started_at = models.DateTimeField(null=True, blank=True)
    # The guard's last look and, when it stopped the rollout, why (with its evidence).
    checked_at = models.DateTimeField(null=True, blank=True)
    verdicts = models.JSONField(default=list, blank=True)
    ended_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"],
                condition=models.Q(state__in=[s.value for s in LIVE_STATES]),
                name="rollout_one_live_per_agent",
            )
        ]

    def __str__(self) -> str:
        return f"rollout of v{self.release.version}"

    @property
    def decisions_to_advance(self) -> int:
        """How many decisions under the candidate the guard waits for before it advances
        a clean stage: the rollout's own number, and never fewer than a verdict is drawn
        from (a stage of 20 advanced before the guard could judge it)."""
        return max(self.min_decisions, JUDGED_FROM)

    @property
    def stable_too_few(self) -> int | None:
        """When the stage has its decisions under the candidate but stable had too few to
        compare with at the guard's last look (under JUDGED_FROM on a rate of every
        decision), how many stable had: the guard does not advance such a stage on its own
        (staging with no staging history before it, say). None otherwise."""
        if not self.looked_at_this_stage:
            return None
        for row in self.verdicts:
            if row.get("metric") in JUDGED_ON and not row["enough"]:
                stable, candidate = row["stable"][1], row["candidate"][1]
                if candidate >= self.decisions_to_advance and stable < JUDGED_FROM:
                    return int(stable)
        return None

    @property
    def waits_for_a_person(self) -> str:
        """Why the guard will not advance this stage on its own, in words ("" when it may)."""
        stable = self.stable_too_few
        if stable is None:
            return ""
        plural = "" if stable == 1 else "s"
        compared = (
            f"staging decision{plural} in the week before the stage"
            if self.stage == Stage.STAGING
            else f"production decision{plural} since the stage began"
        )
        then = (
            "Those will not grow, so it will not advance on its own"
            if self.stage == Stage.STAGING
            else "It advances on its own once stable has them"
        )
        return (
            f"The guard has not judged this stage: stable made {stable:,} {compared} to"
            f" compare with, and a verdict needs at least {JUDGED_FROM} under each. {then};"
            " advance it by hand once you are satisfied, or roll it back."
        )

    @property
    def not_judged_because(self) -> str:
        """Why the guard's last look did not find this stage clean and judged, in words
        ("" when it did): what a person advancing it by hand overrides."""
        if not self.looked_at_this_stage:
            return "the guard has not looked at it yet"
        if any(row.get("regressed") for row in self.verdicts):
            return "the guard found a regression"
        rows = [row for row in self.verdicts if row.get("metric") in JUDGED_ON]
        decisions = min((row["candidate"][1] for row in rows), default=0)
        if decisions < self.decisions_to_advance:
            return f"{decisions:,} of {self.decisions_to_advance:,} decisions under the candidate"
        stable = self.stable_too_few
        if stable is not None:
            return f"stable had {stable:,} decisions to compare with, of {JUDGED_FROM}"
        return ""

    @property
    def looked_at_this_stage(self) -> bool:
        """Whether the verdicts kept are of the stage the rollout is at: an advance (or a
        resume) starts a stage, and until the guard's next look they are the last one's."""
        if self.checked_at is None:
            return False
        return self.stage_started_at is None or self.checked_at >= self.stage_started_at

    @property
    def share_percent(self) -> float:
        """The canary's share of sessions now (0 before the canary, 100 once full)."""
        if self.stage == Stage.CANARY and self.plan:
            return float(self.plan[min(self.step, len(self.plan) - 1)])
        return 100.0 if self.stage == Stage.FULL else 0.0
