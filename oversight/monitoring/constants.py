"""Choices for monitoring: alert kinds, severities and states."""

from __future__ import annotations

from django.db import models


class AlertKind(models.TextChoices):
    VOLUME = "volume", "Volume far above baseline"
    ERROR_RATE = "error_rate", "Error-rate spike"
    DENIAL_RATE = "denial_rate", "Denial spike"
    NEW_RESOURCE = "new_resource", "New resource family"
    OFF_HOURS = "off_hours", "Activity outside usual hours"


class Severity(models.TextChoices):
    """Ordered by rank; "serious" in the spec means CRITICAL (it triggers the agent's response)."""

    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


UNRESOLVED = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
