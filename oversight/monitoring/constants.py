"""Choices for monitoring: alert kinds, severities and states."""

from __future__ import annotations

from django.db import models


class AlertKind(models.TextChoices):
    VOLUME = "volume", "Volume far above baseline"
    ERROR_RATE = "error_rate", "Error-rate spike"
    DENIAL_RATE = "denial_rate", "Denial spike"
    NEW_RESOURCE = "new_resource", "New resource family"
    OFF_HOURS = "off_hours", "Activity outside usual hours"
    UNREPORTED = "unreported", "Started, outcome not reported"


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


# --- Detection thresholds (documented in docs/monitoring.md) -----------------------------
# Detectors look at the last WINDOW_MINUTES minutes of rollups, the current minute included.
WINDOW_MINUTES = 5
# Each run recomputes this many recent minutes of rollups, so results reported a little
# after their decision (an action's failure) are counted in the minute it was created.
RECOMPUTE_MINUTES = 10
# The baseline: the agent's own average over this many days before the window.
BASELINE_DAYS = 7
# Volume: alert above max(floor, factor x baseline) actions per window; critical at twice that.
VOLUME_FLOOR = 30
VOLUME_FACTOR = 5
VOLUME_CRITICAL_MULTIPLE = 2
# An agent with less than an hour of history has no baseline yet: until it has, the volume
# threshold is VOLUME_FACTOR x VOLUME_FLOOR, so a new agent's first steady traffic is quiet.
BASELINE_MIN_MINUTES = 60
# Failed results and denials: at least the floor in the window, at a rate of at least
# max(minimum rate, factor x the agent's baseline rate).
ERROR_FLOOR = 5
ERROR_MIN_RATE = 0.25
ERROR_FACTOR = 3
DENIAL_FLOOR = 5
DENIAL_MIN_RATE = 0.25
DENIAL_FACTOR = 3
# Denials become critical when most of a large window is denied: probing for what it may do.
DENIAL_CRITICAL_RATE = 0.5
DENIAL_CRITICAL_MULTIPLE = 3
# Usual hours: hours of the day (UTC) with any activity over the last USUAL_HOURS_DAYS days;
# judged only for agents with at least OFF_HOURS_MIN_HISTORY_DAYS of history.
USUAL_HOURS_DAYS = 14
OFF_HOURS_MIN_HISTORY_DAYS = 7
OFF_HOURS_FLOOR = 3
# New resource families are learnt silently during an agent's first LEARNING_HOURS.
LEARNING_HOURS = 24
# Rollups older than this are deleted by the daily prune.
ROLLUP_RETENTION_DAYS = 30
# An approved action the agent started this long ago without reporting its outcome may
# have run: its owner is asked to check and record what happened (monitoring/unreported.py).
UNREPORTED_AFTER_MINUTES = 10
# Evidence keeps at most this many actions per alert, the most recent first.
MAX_EVIDENCE_ACTIONS = 50
