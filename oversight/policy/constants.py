"""Choices for grants, rules and limits."""

from __future__ import annotations

from django.db import models


class Effect(models.TextChoices):
    PERMIT = "permit", "Permit"
    FORBID = "forbid", "Forbid"
    HOLD = "hold", "Hold for a human"


class OnExceed(models.TextChoices):
    DENY = "deny", "Deny"
    HOLD = "hold", "Hold for a human"
    PAUSE = "pause", "Pause the agent"


class Approvers(models.TextChoices):
    """Who may approve what a hold rule holds (besides having approve access)."""

    ACCESS = "access", "Anyone with approve access on the agent"
    TEAM_REVIEWERS = "team_reviewers", "The team's reviewers"
    ROLE = "role", "People with a role"
    PEOPLE = "people", "Named people"


class Reversibility(models.TextChoices):
    """What a grant's actions are, for undo (docs/rewind.md). Blank: not said (unknown)."""

    READ = "read", "Read only (nothing to undo)"
    REVERSIBLE = "reversible", "Reversible (with a compensation)"
    IRREVERSIBLE = "irreversible", "Irreversible"


UNKNOWN_REVERSIBILITY = "unknown"  # what an action under a grant that says nothing records
DEFAULT_UNDO_WINDOW_SECONDS = 7 * 24 * 3600
MAX_UNDO_WINDOW_SECONDS = 365 * 24 * 3600

DEFAULT_HOLD_SECONDS = 15 * 60
MAX_HOLD_SECONDS = 7 * 24 * 3600
MAX_APPROVALS = 10
