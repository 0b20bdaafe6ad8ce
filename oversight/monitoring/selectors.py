"""Reads of monitoring data, always for a given user and filtered in the database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from oversight.agents.selectors import agents_with_perm
from oversight.monitoring.constants import UNRESOLVED, AlertKind, AlertStatus
from oversight.monitoring.models import AgentMinute, Alert
from oversight.monitoring.rollups import floor_minute


def alerts_visible(*, user: Any) -> QuerySet[Alert]:
    """Alerts of the agents the user may view."""
    return Alert.objects.filter(agent__in=agents_with_perm(user=user)).select_related(
        "agent", "acknowledged_by", "resolved_by"
    )


def alerts_open(*, user: Any) -> QuerySet[Alert]:
    """Unresolved (open or acknowledged) alerts of agents the user may view, newest first."""
    return alerts_visible(user=user).filter(status__in=UNRESOLVED).order_by("-last_seen_at")


def minutes_for(*, user: Any, since: dt.datetime) -> QuerySet[AgentMinute]:
    """Rollup rows since ``since`` of agents the user may view, oldest first."""
    return (
        AgentMinute.objects.filter(agent__in=agents_with_perm(user=user), minute__gte=since)
        .select_related("agent")
        .order_by("minute", "agent_id")
    )


MINUTES_BEFORE_ALERT = dt.timedelta(minutes=15)


def alert_minutes(*, alert: Alert) -> list[AgentMinute]:
    """The agent's minutes from a quarter of an hour before the alert opened to its last
    check, oldest first; none for an alert about unsettled actions (not traffic). Each
    has ``counted``: whether the alert's headline counts it. A headline ("90 actions in
    5 minutes") is the window of its last check (detectors.window_at), and counts the
    minute then under way as it stood: the table's sum may differ, and says why."""
    if alert.kind == AlertKind.UNREPORTED:
        return []
    rows = list(
        AgentMinute.objects.filter(
            agent=alert.agent,
            minute__gte=alert.opened_at - MINUTES_BEFORE_ALERT,
            minute__lte=alert.last_seen_at,
        ).order_by("minute")
    )
    width = alert.evidence.get("window_minutes")
    last = floor_minute(alert.last_seen_at)
    first = last - dt.timedelta(minutes=width - 1) if isinstance(width, int) and width > 0 else None
    for row in rows:
        row.counted = first is not None and first <= row.minute <= last
    return rows


@dataclass(frozen=True)
class AlertFilters:
    """The alert list's filters. ``status`` is a status or "unresolved"; empty means all."""

    agent: str = ""
    status: str = "unresolved"


STATUS_FILTERS = ("unresolved", *AlertStatus.values, "")


def alert_list(*, user: Any, filters: AlertFilters | None = None) -> QuerySet[Alert]:
    f = filters or AlertFilters()
    alerts = alerts_visible(user=user)
    if f.agent:
        alerts = alerts.filter(agent__slug=f.agent)
    if f.status == "unresolved":
        alerts = alerts.filter(status__in=UNRESOLVED)
    elif f.status:
        alerts = alerts.filter(status=f.status)
    return alerts.order_by("-last_seen_at", "-pk")


def alert_get(*, user: Any, pk: int) -> Alert:
    """The alert if the user may view its agent; 404 otherwise, so nothing leaks."""
    alert = alerts_visible(user=user).filter(pk=pk).first()
    if alert is None:
        raise Http404("No such alert.")
    return alert
