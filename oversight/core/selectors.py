"""Reads for the overview: activity per agent over the last hour, and what needs a person.

Everything is limited to the agents the person may view (approvals: may decide).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMinute

from oversight.agents.models import Agent
from oversight.agents.selectors import agents_with_perm
from oversight.approvals.selectors import approval_queue
from oversight.gateway.constants import ActionStatus
from oversight.monitoring.rollups import DENIED, floor_minute, watched_actions
from oversight.monitoring.selectors import alerts_open, minutes_for
from oversight.reviews.selectors import agents_unowned, reviews_overdue

# The charts: the last hour, one point a minute; the busiest agents get a line each, the
# rest are summed into one, so a large fleet stays readable.
CHART_MINUTES = 60
CHART_AGENTS = 6
OTHERS = {"slug": "", "name": "Other agents"}
# The rollup job runs every minute; the minutes it may not have reached yet are counted
# from the gateway's actions directly (indexed by agent and time: a few rows).
LIVE_MINUTES = 2
SERIES = ("actions", "denied", "failed")
# Panels list this many rows each, with the total.
PANEL_ROWS = 8


def _live_minutes(*, agents: QuerySet[Agent], since: dt.datetime) -> list[dict[str, Any]]:
    """Rollup-shaped counts from the Action table, by the rollup job's own rules (what a
    kill switch halted left out)."""
    return list(
        watched_actions()
        .filter(agent__in=agents, created_at__gte=since)
        .order_by()
        .annotate(minute=TruncMinute("created_at", tzinfo=dt.UTC))
        .values("agent_id", "minute")
        .annotate(
            actions=Count("id"),
            denied=Count("id", filter=Q(decision__in=DENIED)),
            failed=Count("id", filter=Q(status=ActionStatus.FAILED)),
        )
    )


def overview_series(*, user: Any, now: dt.datetime) -> dict[str, Any]:
    """Actions, denials and failures per minute per agent over the last hour, as the
    charts want them: one x array (Unix seconds) and one y array per agent."""
    end = floor_minute(now)
    start = end - dt.timedelta(minutes=CHART_MINUTES - 1)
    live_since = end - dt.timedelta(minutes=LIVE_MINUTES - 1)
    x = [int((start + dt.timedelta(minutes=i)).timestamp()) for i in range(CHART_MINUTES)]
    index = {t: i for i, t in enumerate(x)}

    counts: dict[int, dict[str, list[int]]] = {}

    def add(row: dict[str, Any]) -> None:
        i = index.get(int(row["minute"].timestamp()))
        if i is None:
            return
        agent = counts.setdefault(row["agent_id"], {s: [0] * CHART_MINUTES for s in SERIES})
        for s in SERIES:
            agent[s][i] = row[s]

    rolled = minutes_for(user=user, since=start).filter(minute__lt=live_since)
    for row in rolled.values("agent_id", "minute", *SERIES):
        add(row)
    for row in _live_minutes(agents=agents_with_perm(user=user), since=live_since):
        add(row)

    busiest = sorted(counts, key=lambda a: -sum(counts[a]["actions"]))
    shown, rest = busiest[:CHART_AGENTS], busiest[CHART_AGENTS:]
    found = {
        pk: (slug, name)
        for pk, slug, name in Agent.objects.filter(pk__in=shown).values_list("pk", "slug", "name")
    }
    agents = [{"slug": found[a][0], "name": found[a][1]} for a in shown]
    series = {s: [counts[a][s] for a in shown] for s in SERIES}
    if rest:
        agents.append(OTHERS)
        for s in SERIES:
            series[s].append([sum(counts[a][s][i] for a in rest) for i in range(CHART_MINUTES)])
    totals = {s: sum(map(sum, series[s])) for s in SERIES}
    return {"x": x, "agents": agents, "series": series, "totals": totals}


@dataclass(frozen=True)
class Panel:
    rows: list[Any]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


def _panel(queryset: QuerySet[Any]) -> Panel:
    rows = list(queryset[:PANEL_ROWS])
    total = len(rows) if len(rows) < PANEL_ROWS else queryset.count()
    return Panel(rows, total)


def overview_panels(*, user: Any) -> dict[str, Any]:
    """What needs a person now: open alerts, overdue reviews, unowned agents, approvals."""
    return {
        "alerts": _panel(alerts_open(user=user)),
        "overdue": _panel(reviews_overdue(user=user)),
        "unowned": _panel(agents_unowned(user=user)),
        "waiting": approval_queue(user=user).count(),
    }
