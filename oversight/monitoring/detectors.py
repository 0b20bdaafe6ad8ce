"""Detectors: compare each active agent's last few minutes with its own history.

They read only the rollup table, with a handful of set-based queries per run whatever the
number of agents; the Action table is read only for the evidence of what they find.
Thresholds are in ``constants`` and explained in docs/monitoring.md.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import ExtractHour

from oversight.gateway.constants import ActionStatus
from oversight.monitoring import constants as c
from oversight.monitoring.constants import AlertKind, Severity
from oversight.monitoring.families import resource_family
from oversight.monitoring.models import AgentMinute
from oversight.monitoring.rollups import DENIED, UTC, floor_minute, watched_actions
from oversight.monitoring.services import Finding


@dataclass
class Activity:
    """One agent's sums over the window, its baseline, and its usual hours."""

    actions: int = 0
    denied: int = 0
    failed: int = 0
    by_hour: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    base_actions: int = 0
    base_denied: int = 0
    base_failed: int = 0
    base_minutes: int = 0  # since its first rollup in the baseline period
    base_active_minutes: int = 0  # of those, the minutes in which it had actions
    usual_hours: set[int] = field(default_factory=set)
    history_since: dt.datetime | None = None


@dataclass(frozen=True)
class Window:
    start: dt.datetime  # the first minute of the window
    end: dt.datetime  # now: actions created before it count

    @property
    def minutes(self) -> int:
        return c.WINDOW_MINUTES


def window_at(now: dt.datetime) -> Window:
    return Window(floor_minute(now) - dt.timedelta(minutes=c.WINDOW_MINUTES - 1), now)


def _sum(name: str) -> Sum:
    return Sum(name, default=0)


def _activity(window: Window) -> dict[int, Activity]:
    """Three queries over the rollups: the window, the baseline, the usual hours."""
    now = window.end
    agents: dict[int, Activity] = defaultdict(Activity)
    recent = AgentMinute.objects.filter(minute__gte=window.start, minute__lt=now)
    for row in recent.values("agent_id", "minute", "actions", "denied", "failed"):
        a = agents[row["agent_id"]]
        a.actions += row["actions"]
        a.denied += row["denied"]
        a.failed += row["failed"]
        a.by_hour[row["minute"].astimezone(UTC).hour] += row["actions"]
    if not agents:
        return {}

    history = AgentMinute.objects.filter(agent_id__in=list(agents), minute__lt=window.start)
    since = now - dt.timedelta(days=c.BASELINE_DAYS)
    baseline = (
        history.filter(minute__gte=since)
        .order_by()
        .values("agent_id")
        .annotate(
            actions=_sum("actions"),
            denied=_sum("denied"),
            failed=_sum("failed"),
            first=Min("minute"),
            active=Count("id"),  # a rollup row is a minute with actions (rollups.py)
        )
    )
    for row in baseline:
        a = agents[row["agent_id"]]
        a.base_actions, a.base_denied, a.base_failed = row["actions"], row["denied"], row["failed"]
        # Minutes the baseline covers: from the agent's first rollup in the period on, so a
        # new agent's average is not diluted by days before it existed.
        a.base_minutes = max(1, int((window.start - row["first"]).total_seconds() // 60))
        # Its rate is averaged over the minutes in which it acted, so idle time (nights,
        # a weekend, the hour between a batch agent's runs, Oversight itself down) does
        # not dilute it: an agent's usual run is judged against its rate when it works.
        a.base_active_minutes = max(1, row["active"])

    hours = (
        history.filter(minute__gte=now - dt.timedelta(days=c.USUAL_HOURS_DAYS))
        .annotate(hour=ExtractHour("minute", tzinfo=UTC))
        .order_by()
        .values("agent_id", "hour")
        .annotate(first=Min("minute"))
    )
    for row in hours:
        a = agents[row["agent_id"]]
        a.usual_hours.add(row["hour"])
        if a.history_since is None or row["first"] < a.history_since:
            a.history_since = row["first"]
    return dict(agents)


def _evidence(
    agent_id: int, window: Window, only: Q | None = None, hours: set[int] | None = None
) -> list[dict[str, Any]]:
    actions = watched_actions().filter(
        agent_id=agent_id, created_at__gte=window.start, created_at__lt=window.end
    )
    if only is not None:
        actions = actions.filter(only)
    if hours is not None:
        actions = actions.annotate(hour=ExtractHour("created_at", tzinfo=UTC)).filter(
            hour__in=hours
        )
    rows = actions.order_by("-created_at").values(*EVIDENCE_FIELDS, "created_at")
    return [evidence_item(r, r["created_at"]) for r in rows[: c.MAX_EVIDENCE_ACTIONS]]


EVIDENCE_FIELDS = ("id", "action", "resource", "status")


def evidence_item(row: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    """One action of an alert's evidence (``row`` has EVIDENCE_FIELDS), ``at`` the time
    that made it evidence."""
    return {
        "id": str(row["id"]),
        "action": row["action"],
        "resource": row["resource"],
        "status": row["status"],
        "at": at.astimezone(UTC).isoformat(),
    }


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _volume(agent_id: int, a: Activity, window: Window) -> Finding | None:
    # Under an hour of history there is no baseline: the floor stands for one. (Its first
    # minutes are not one: a new agent that starts in a flood would set its own bar.)
    new_agent = a.base_minutes < c.BASELINE_MIN_MINUTES
    if new_agent:
        per_window = float(c.VOLUME_FLOOR)
    elif a.base_active_minutes:
        per_window = a.base_actions * window.minutes / a.base_active_minutes
    else:
        per_window = 0.0
    threshold = max(c.VOLUME_FLOOR, c.VOLUME_FACTOR * per_window)
    if a.actions <= threshold:
        return None
    critical = a.actions >= c.VOLUME_CRITICAL_MULTIPLE * threshold
    usual = "no baseline yet" if new_agent else f"usually about {per_window:.0f}"
    return Finding(
        agent_id=agent_id,
        kind=AlertKind.VOLUME,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        dedupe_key=AlertKind.VOLUME,
        title=f"{a.actions} actions in {window.minutes} minutes ({usual})",
        numbers={
            "window_minutes": window.minutes,
            "actions_in_window": a.actions,
            "baseline_per_window": round(per_window, 2),
            "baseline_minutes": a.base_minutes,
            "baseline_active_minutes": a.base_active_minutes,
            "threshold": round(threshold, 2),
        },
        actions=_evidence(agent_id, window),
    )


def _spike(
    agent_id: int,
    window: Window,
    *,
    kind: str,
    count: int,
    total: int,
    base_count: int,
    base_total: int,
    floor: int,
    min_rate: float,
    factor: float,
    only: Q,
    noun: str,
) -> Finding | None:
    rate, base_rate = _rate(count, total), _rate(base_count, base_total)
    threshold = max(min_rate, factor * base_rate)
    if count < floor or rate < threshold:
        return None
    critical = (
        kind == AlertKind.DENIAL_RATE
        and rate >= c.DENIAL_CRITICAL_RATE
        and count >= c.DENIAL_CRITICAL_MULTIPLE * floor
    )
    return Finding(
        agent_id=agent_id,
        kind=kind,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        dedupe_key=kind,
        title=f"{count} of {total} actions {noun} in {window.minutes} minutes ({rate:.0%})",
        numbers={
            "window_minutes": window.minutes,
            noun: count,
            "actions_in_window": total,
            "rate": round(rate, 3),
            "baseline_rate": round(base_rate, 3),
            "threshold_rate": round(threshold, 3),
        },
        actions=_evidence(agent_id, window, only=only),
    )


def _off_hours(agent_id: int, a: Activity, window: Window) -> Finding | None:
    enough = window.end - dt.timedelta(days=c.OFF_HOURS_MIN_HISTORY_DAYS)
    if a.history_since is None or a.history_since > enough:
        return None
    unusual = {hour: n for hour, n in a.by_hour.items() if n and hour not in a.usual_hours}
    count = sum(unusual.values())
    if count < c.OFF_HOURS_FLOOR:
        return None
    hours = ", ".join(f"{h:02d}:00" for h in sorted(unusual))
    return Finding(
        agent_id=agent_id,
        kind=AlertKind.OFF_HOURS,
        severity=Severity.WARNING,
        dedupe_key=AlertKind.OFF_HOURS,
        title=f"{count} actions at {hours} UTC, outside its usual hours",
        numbers={
            "window_minutes": window.minutes,
            "actions_off_hours": count,
            "hours": sorted(unusual),
            "usual_hours": sorted(a.usual_hours),
        },
        actions=_evidence(agent_id, window, hours=set(unusual)),
    )


def detect(*, now: dt.datetime) -> list[Finding]:
    """Volume, error-rate, denial-rate and off-hours findings for the window ending now."""
    window = window_at(now)
    findings: list[Finding | None] = []
    for agent_id, a in _activity(window).items():
        if not a.actions:
            continue
        findings.append(_volume(agent_id, a, window))
        findings.append(
            _spike(
                agent_id,
                window,
                kind=AlertKind.ERROR_RATE,
                count=a.failed,
                total=a.actions,
                base_count=a.base_failed,
                base_total=a.base_actions,
                floor=c.ERROR_FLOOR,
                min_rate=c.ERROR_MIN_RATE,
                factor=c.ERROR_FACTOR,
                only=Q(status=ActionStatus.FAILED),
                noun="failed",
            )
        )
        findings.append(
            _spike(
                agent_id,
                window,
                kind=AlertKind.DENIAL_RATE,
                count=a.denied,
                total=a.actions,
                base_count=a.base_denied,
                base_total=a.base_actions,
                floor=c.DENIAL_FLOOR,
                min_rate=c.DENIAL_MIN_RATE,
                factor=c.DENIAL_FACTOR,
                only=Q(decision__in=DENIED),
                noun="denied",
            )
        )
        findings.append(_off_hours(agent_id, a, window))
    return [f for f in findings if f is not None]


def new_family_finding(
    *, agent_id: int, family: str, first_at: dt.datetime, now: dt.datetime
) -> Finding:
    """The first access of an agent to a resource family, with the actions that touched it."""
    window = Window(floor_minute(first_at), now)
    candidates = _evidence(agent_id, window, only=Q(resource__startswith=family))
    actions = [a for a in candidates if resource_family(a["resource"]) == family]
    return Finding(
        agent_id=agent_id,
        kind=AlertKind.NEW_RESOURCE,
        severity=Severity.WARNING,
        dedupe_key=f"{AlertKind.NEW_RESOURCE}:{family}"[:600],
        title=f"First access to {family}"[:200],
        numbers={"family": family, "first_at": first_at.astimezone(UTC).isoformat()},
        actions=actions,
    )
