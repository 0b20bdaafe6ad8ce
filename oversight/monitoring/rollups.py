"""Per-minute rollups of each agent's actions, computed in the database from the gateway's
Action table (read only), and the resource families each agent has touched."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import TruncMinute

from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.monitoring.families import resource_family
from oversight.monitoring.models import AgentMinute

UTC = dt.UTC
# How each action counts, by its first decision (``Action.decision``): a staging dry run
# counts as allowed. Failed is the action's current status, so a failure reported after
# the decision counts once its minute is recomputed. An action a kill switch halted does
# not count at all (``watched_actions``).
ALLOWED = (ActionStatus.ALLOWED, ActionStatus.DRY_RUN)
DENIED = (ActionStatus.DENIED,)
HELD = (ActionStatus.PENDING,)
COUNTERS = ("actions", "allowed", "denied", "held", "failed", "distinct_resources")


def floor_minute(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def watched_actions() -> QuerySet[Action]:
    """The actions monitoring judges an agent by: not those a kill switch halted. The
    switch decided them, not the agent (incidents leave them out too), and counted as
    denials they raised a critical alert that went on holding the agent's actions once
    the switch was released."""
    return Action.objects.exclude(decision=ActionStatus.HALTED)


def _actions_between(start: dt.datetime, end: dt.datetime) -> QuerySet[Action]:
    return watched_actions().filter(created_at__gte=start, created_at__lt=end).order_by()


def rollup_minutes(*, start: dt.datetime, end: dt.datetime) -> int:
    """Recompute the rows of every minute from ``start``'s minute on, counting the actions
    created before ``end``: one GROUP BY and one upsert. Returns the rows written."""
    rows = (
        _actions_between(floor_minute(start), end)
        .annotate(at=TruncMinute("created_at", tzinfo=UTC))
        .values("agent_id", "at")
        .annotate(
            actions=Count("id"),
            allowed=Count("id", filter=Q(decision__in=ALLOWED)),
            denied=Count("id", filter=Q(decision__in=DENIED)),
            held=Count("id", filter=Q(decision__in=HELD)),
            failed=Count("id", filter=Q(status=ActionStatus.FAILED)),
            distinct_resources=Count("resource", distinct=True),
        )
    )
    minutes = [
        AgentMinute(agent_id=r["agent_id"], minute=r["at"], **{c: r[c] for c in COUNTERS})
        for r in rows
    ]
    AgentMinute.objects.bulk_create(
        minutes,
        update_conflicts=True,
        unique_fields=["agent", "minute"],
        update_fields=list(COUNTERS),
        batch_size=1000,
    )
    return len(minutes)


def families_touched(*, start: dt.datetime, end: dt.datetime) -> dict[tuple[int, str], dt.datetime]:
    """(agent id, family) -> first time touched, for actions created in [start, end).

    One query for the distinct (agent, resource) pairs of the span; families are derived
    from those in Python (a few per agent and minute, not one per action).
    """
    pairs = (
        _actions_between(start, end)
        .values("agent_id", "resource")
        .annotate(first_at=Min("created_at"))
        .values_list("agent_id", "resource", "first_at")
    )
    touched: dict[tuple[int, str], dt.datetime] = {}
    for agent_id, resource, first_at in pairs:
        key = (agent_id, resource_family(resource))
        if key not in touched or first_at < touched[key]:
            touched[key] = first_at
    return touched
