"""The periodic work of monitoring, each step taking an explicit ``now`` so that tests can
travel in time: roll up recent minutes, learn resource families, detect, raise alerts."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Min

from oversight.monitoring import constants as c
from oversight.monitoring.constants import UNRESOLVED, AlertKind, AlertStatus
from oversight.monitoring.detectors import detect, new_family_finding, window_at
from oversight.monitoring.models import AgentMinute, Alert, ResourceFamily
from oversight.monitoring.rollups import families_touched, rollup_minutes
from oversight.monitoring.services import alert_raise, alert_resolve_cleared
from oversight.monitoring.unreported import unreported_findings

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    minutes: int = 0
    families_learnt: int = 0
    opened: int = 0
    updated: int = 0
    resolved: int = 0


def _unreported_cleared(*, still: set[int], now: dt.datetime) -> int:
    """Resolve the unreported-actions alerts of agents with none left (monitoring/unreported.py)."""
    cleared = Alert.objects.filter(kind=AlertKind.UNREPORTED, status__in=UNRESOLVED).exclude(
        agent_id__in=still
    )
    resolved = 0
    for alert_id in cleared.values_list("pk", flat=True):
        why = "every action it listed has been settled"
        resolved += alert_resolve_cleared(alert_id=alert_id, now=now, why=why)
    return resolved


def _learning_agents(agent_ids: set[int], now: dt.datetime) -> set[int]:
    """Agents still in their first LEARNING_HOURS: first families recorded quietly."""
    settled_before = now - dt.timedelta(hours=c.LEARNING_HOURS)
    first_seen = dict(
        ResourceFamily.objects.filter(agent_id__in=agent_ids)
        .order_by()
        .values("agent_id")
        .annotate(first=Min("first_seen_at"))
        .values_list("agent_id", "first")
    )
    return {a for a in agent_ids if a not in first_seen or first_seen[a] > settled_before}


def families_observe(
    *, start: dt.datetime, end: dt.datetime, now: dt.datetime, quiet: bool = False
) -> tuple[int, int]:
    """Record the families touched in [start, end) that were not known; alert on each new
    one of an agent past its learning period (unless ``quiet``). Returns (learnt, alerted)."""
    touched = families_touched(start=start, end=end)
    if not touched:
        return 0, 0
    agent_ids = {agent_id for agent_id, _family in touched}
    known = set(
        ResourceFamily.objects.filter(agent_id__in=agent_ids).values_list("agent_id", "family")
    )
    new = {key: at for key, at in touched.items() if key not in known}
    learning = agent_ids if quiet else _learning_agents(agent_ids, now)
    quietly = [
        ResourceFamily(agent_id=a, family=f, first_seen_at=at)
        for (a, f), at in new.items()
        if a in learning
    ]
    ResourceFamily.objects.bulk_create(quietly, ignore_conflicts=True)
    alerted = 0
    for (agent_id, family), first_at in sorted(new.items(), key=lambda kv: kv[1]):
        if agent_id in learning:
            continue
        finding = new_family_finding(agent_id=agent_id, family=family, first_at=first_at, now=end)
        with transaction.atomic():
            first_action = finding.actions[-1]["id"] if finding.actions else None
            _row, created = ResourceFamily.objects.get_or_create(
                agent_id=agent_id,
                family=family,
                defaults={"first_seen_at": first_at, "first_action_id": first_action},
            )
            if created:  # a concurrent run that got there first has alerted already
                alert_raise(finding=finding, now=now)
                alerted += 1
    return len(new), alerted


def _recently_resolved(now: dt.datetime) -> set[tuple[int, str]]:
    """(agent, key) of alerts resolved within the window: the data people saw when they
    resolved them is still in the window and must not raise them again at once."""
    since = window_at(now).start
    return set(
        Alert.objects.filter(status=AlertStatus.RESOLVED, resolved_at__gte=since).values_list(
            "agent_id", "dedupe_key"
        )
    )


def monitoring_run(*, now: dt.datetime) -> RunResult:
    """One run: roll up the last RECOMPUTE_MINUTES, learn families, detect (and find
    started actions never reported), raise alerts.
    Safe to repeat: an ongoing condition updates its one unresolved alert."""
    result = RunResult()
    start = now - dt.timedelta(minutes=c.RECOMPUTE_MINUTES)
    result.minutes = rollup_minutes(start=start, end=now)
    result.families_learnt, result.opened = families_observe(start=start, end=now, now=now)
    suppressed = _recently_resolved(now)
    unreported = unreported_findings(now=now)
    result.resolved = _unreported_cleared(still={f.agent_id for f in unreported}, now=now)
    for finding in [*detect(now=now), *unreported]:
        if (finding.agent_id, finding.dedupe_key) in suppressed:
            continue
        _alert, opened = alert_raise(finding=finding, now=now)
        result.opened += opened
        result.updated += not opened
    if result.opened:
        logger.warning("monitoring opened %s alerts", result.opened)
    return result


def monitoring_backfill(*, start: dt.datetime, end: dt.datetime) -> RunResult:
    """Roll up a past span and learn its families quietly: a baseline from day one."""
    return RunResult(
        minutes=rollup_minutes(start=start, end=end),
        families_learnt=families_observe(start=start, end=end, now=end, quiet=True)[0],
    )


def rollups_prune(*, now: dt.datetime) -> int:
    """Delete rollups older than the retention period; families and alerts stay."""
    cutoff = now - dt.timedelta(days=c.ROLLUP_RETENTION_DAYS)
    deleted, _ = AgentMinute.objects.filter(minute__lt=cutoff).delete()
    return deleted
