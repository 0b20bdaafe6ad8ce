"""Choices for the agent registry."""

from __future__ import annotations

from django.db import models


class AgentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    RETIRED = "retired", "Retired"


class AlertResponse(models.TextChoices):
    """What happens by itself when a serious monitoring alert opens on the agent."""

    NONE = "none", "Nothing (people are told)"
    HOLD = "hold", "Hold every action for a human until cleared"
    PAUSE = "pause", "Pause the agent"


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Environment(models.TextChoices):
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


DEFAULT_REVIEW_INTERVAL_DAYS = 90
MAX_REVIEW_INTERVAL_DAYS = 730

# The event an in-place change on the agent's page (a tool accepted, a token issued, access
# granted) sends with its answer (HX-Trigger): the page's History re-reads itself on it
# (agents/_history.html), so the change's audit event shows without a reload.
HISTORY_CHANGED = "agent-history-changed"

# Object permissions on an agent (guardian codenames).
VIEW = "view_agent"
CHANGE = "change_agent"
APPROVE = "approve_agent"

# The token Oversight issues itself to decide an agent's undos (rewind/services.py); shown
# on the agent's page as Oversight's, revocable (the next undo issues another), not rotated.
UNDO_TOKEN_NAME = "undo (Oversight)"  # noqa: S105 - a token's name, not a secret
