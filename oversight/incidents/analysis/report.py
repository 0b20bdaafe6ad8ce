"""The analysis of an incident, as the JSON its page, its API and its exports show.

The window is the ``INCIDENT_LOOKBACK_BUCKETS`` buckets before the incident opened, up to
now (or until it was resolved). In it: the behaviour series, the break point
(changepoint.py), the scope's changes ranked as causes (changes.py, causes.py), the blast
radius from the break on (blast.py: to the window's end, or to the release of the kill
switch that stopped the agents) and the timeline (timeline.py).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.audit import verbs
from oversight.audit.models import AuditEvent
from oversight.incidents.analysis.blast import blast_radius
from oversight.incidents.analysis.causes import rank
from oversight.incidents.analysis.changepoint import Split, best_split
from oversight.incidents.analysis.changes import change_events, group_changes
from oversight.incidents.analysis.series import Series, behaviour_series, scope_actions
from oversight.incidents.analysis.timeline import series_rows, timeline
from oversight.incidents.models import Incident, IncidentScope, TriggerKind
from oversight.rewind.links import rewind_plan_url

REPORT_VERSION = 1
MAX_CAUSES = 10
# Without a clear break, the blast radius starts this many buckets before the opening.
FALLBACK_BUCKETS = 15


@dataclass(frozen=True)
class Scope:
    agents: list[Agent]
    team_ids: list[int]

    @property
    def agent_ids(self) -> list[int]:
        return [agent.pk for agent in self.agents]


def incident_scope(incident: Incident) -> Scope:
    if incident.scope == IncidentScope.AGENT:
        assert incident.agent is not None
        return Scope([incident.agent], [incident.agent.team_id])
    if incident.scope == IncidentScope.TEAM:
        assert incident.team_id is not None
        return Scope(list(Agent.objects.filter(team_id=incident.team_id)), [incident.team_id])
    agents = list(Agent.objects.all())
    return Scope(agents, sorted({agent.team_id for agent in agents}))


def _break(series: Series, split: Split | None) -> dict[str, Any] | None:
    if split is None:
        return None
    return {
        "at": series.at(split.index).isoformat(),
        "g": round(split.g, 2),
        "clear": split.clear,
        "what_changed": _what_changed(split),
    }


def _what_changed(split: Split) -> list[dict[str, Any]]:
    total = sum(v for v in split.terms.values() if v > 0) or 1.0
    top = sorted(((v, k) for k, v in split.terms.items() if v > 0), reverse=True)[:6]
    return [{"what": key, "share": round(value / total, 4)} for value, key in top]


MAX_LINKED = 20  # agents offered a rewind and a behaviour diff


def _acting(scope: Scope, start: dt.datetime, end: dt.datetime) -> list[Agent]:
    """The agents of the scope that acted in the window, busiest first (MAX_LINKED of
    them): a team's or everyone's incident links to those, not to the first agents made
    (nor to retired ones, idle since)."""
    if len(scope.agents) == 1:
        return scope.agents
    busiest = (
        scope_actions(scope.agent_ids, start, end)
        .order_by()
        .values("agent_id")
        .annotate(n=Count("pk"))
        .order_by("-n", "agent_id")
        .values_list("agent_id", flat=True)[:MAX_LINKED]
    )
    by_pk = {agent.pk: agent for agent in scope.agents}
    return [by_pk[pk] for pk in busiest]


def _rewind_urls(agents: list[Agent], since: dt.datetime, until: dt.datetime) -> list:
    return [
        {
            "agent": agent.slug,
            "name": agent.name,
            "url": rewind_plan_url(agent.slug, since=since, until=until),
        }
        for agent in agents
    ]


def _diff_urls(agents: list[Agent], series: Series, split: Split | None, end: dt.datetime) -> list:
    """The behaviour diff of the window before the break against the one after it, per
    agent that acted."""
    if split is None:
        return []
    brk = series.at(split.index)
    query = urlencode(
        {
            "left": f"{series.start.isoformat()}/{brk.isoformat()}",
            "right": f"{brk.isoformat()}/{end.isoformat()}",
        }
    )
    return [
        {
            "agent": agent.slug,
            "name": agent.name,
            "url": reverse("behaviour:diff", args=[agent.slug]) + "?" + query,
        }
        for agent in agents
    ]


def _blast_start(series: Series, split: Split | None, causes: Sequence[Any], opened: dt.datetime):
    if split is not None and split.clear:
        return series.at(split.index)
    if causes:
        return causes[0].change.at
    return max(
        series.start, opened - dt.timedelta(seconds=FALLBACK_BUCKETS * series.bucket_seconds)
    )


def _stopped_and_released(incident: Incident, end: dt.datetime) -> dt.datetime | None:
    """When the kill switch that stopped the incident's agents was released, if it was,
    before ``end`` and after everything that set the incident off or joined it: the
    damage ended with the stop, and what the agents did once released is not its blast
    radius (nor is it for a rewind to undo). None while anything joined it since."""
    triggers = list(incident.triggers.all())
    switches = [t.target_id for t in triggers if t.kind == TriggerKind.KILL_SWITCH]
    if not switches:
        return None
    released = AuditEvent.objects.filter(
        verb=verbs.KILLSWITCH_RELEASED,
        target_type="killswitch.killswitch",
        target_id__in=switches,
        created_at__gt=max(t.at for t in triggers),
        created_at__lt=end,
    )
    return released.order_by("seq").values_list("created_at", flat=True).first()


def analyse(
    incident: Incident, *, now: dt.datetime | None = None, scope: Scope | None = None
) -> dict[str, Any]:
    """The report of the scope's agents (``scope``: the one the caller records as covered,
    so the two cannot differ; by default the incident's now)."""
    started = time.perf_counter()
    now = now or timezone.now()
    bucket = settings.INCIDENT_BUCKET_SECONDS
    scope = scope or incident_scope(incident)
    start = incident.opened_at - dt.timedelta(seconds=bucket * settings.INCIDENT_LOOKBACK_BUCKETS)
    end = incident.resolved_at or now
    series = behaviour_series(
        agent_ids=scope.agent_ids, start=start, end=end, bucket_seconds=bucket
    )
    split = best_split(series.buckets)
    if split is not None and split.g <= 0:
        split = None  # nothing to tell apart (one bucket of traffic, or none)
    changes = group_changes(
        change_events(agent_ids=scope.agent_ids, team_ids=scope.team_ids, start=start, end=end)
    )
    # What was changed after the incident opened did not set it off (a fix, a rollout
    # started meanwhile): the timeline shows it, the causes do not rank it.
    candidates = [change for change in changes if change.at <= incident.opened_at]
    causes = rank(series, split, candidates, opened=incident.opened_at)
    since = _blast_start(series, split, causes, incident.opened_at)
    released = _stopped_and_released(incident, end)
    if released is not None and released <= since:
        released = None  # the break came after the release: the window runs on
    blast_end = released or end
    ranked = [c.as_json(series) for c in causes[:MAX_CAUSES]]
    acting = _acting(scope, start, end)
    return {
        "version": REPORT_VERSION,
        "window": {"start": start.isoformat(), "end": end.isoformat(), "bucket_seconds": bucket},
        "agents": [agent.slug for agent in scope.agents],
        "break": _break(series, split),
        "causes": ranked,
        # The first cause, when behaviour clearly changed; without a clear break the
        # changes are only what happened in the window, and none is called likely.
        "likely_cause": ranked[0] if ranked and split is not None and split.clear else None,
        "changes_considered": len(candidates),
        "blast_radius": {
            **blast_radius(agent_ids=scope.agent_ids, since=since, until=blast_end),
            "ends_at_release": released is not None,
        },
        "rewind": _rewind_urls(acting, since, blast_end),
        "behaviour_diff": _diff_urls(acting, series, split, end),
        "timeline": timeline(
            agent_ids=scope.agent_ids,
            start=start,
            end=end,
            changes=changes,
            break_at=series.at(split.index) if split is not None and split.clear else None,
        ),
        "series": series_rows(series),
        "seconds": round(time.perf_counter() - started, 3),
    }
