"""The incident's timeline: the scope's changes and responses, its alerts, approvals and
notable actions, in time order; and the per-bucket series for the chart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from oversight.audit import verbs
from oversight.audit.models import AuditEvent
from oversight.incidents.analysis.changes import RESPONSES, Change
from oversight.incidents.analysis.series import Series, outcome, scope_actions
from oversight.monitoring.models import Alert

MAX_VOTES = 30
MAX_NOTABLE = 30
TOP_AMOUNTS = 5


def series_rows(series: Series) -> list[dict[str, Any]]:
    """Per bucket: its start and how many actions ended each way."""
    rows = []
    for index, bucket in enumerate(series.buckets):
        ends = {"allowed": 0, "denied": 0, "held": 0, "failed": 0, "rejected": 0}
        for key, count in bucket.categories.items():
            end = key.rsplit(" ", 1)[-1]
            if end in ends:
                ends[end] += count
        rows.append({"at": series.at(index).isoformat(), "actions": bucket.total, **ends})
    return rows


def _entry(event: Any, kind: str) -> dict[str, Any]:
    return {
        "at": event["created_at"].isoformat(),
        "kind": kind,
        "what": f"{verbs.spoken(event['verb'])}: {event['target_label']}",
        "verb": event["verb"],
        "actor": event["actor_label"],
        "seq": event["seq"],
    }


def _responses(agent_ids: Sequence[int], start: dt.datetime, end: dt.datetime) -> list[dict]:
    """The responses in the window, and its first approvals (votes): only the columns
    shown, and the votes by time, so a busy window reads MAX_VOTES of them, not all."""
    events = AuditEvent.objects.filter(
        agent_id__in=list(agent_ids), created_at__gte=start, created_at__lt=end
    )
    columns = ("seq", "created_at", "verb", "target_label", "actor_label")
    responses = events.filter(verb__in=sorted(RESPONSES | {verbs.ROLLOUT_ROLLED_BACK})).values(
        *columns
    )
    votes = events.filter(verb=verbs.ACTION_VOTED).order_by("created_at").values(*columns)
    return [_entry(e, "response") for e in responses] + [
        _entry(e, "approval") for e in votes[:MAX_VOTES]
    ]


def _alerts(agent_ids: Sequence[int], start: dt.datetime, end: dt.datetime) -> list[dict]:
    alerts = Alert.objects.filter(
        agent_id__in=list(agent_ids), opened_at__gte=start, opened_at__lt=end
    )
    return [
        {
            "at": alert.opened_at.isoformat(),
            "kind": "alert",
            "what": f"{alert.get_severity_display()} alert: {alert.title}",
            "alert_id": alert.pk,
        }
        for alert in alerts
    ]


def _notable(agent_ids: Sequence[int], since: dt.datetime, until: dt.datetime) -> list[dict]:
    """After the break: the first of each action and ending not seen before it, and the
    largest amounts."""
    before = set(
        scope_actions(agent_ids, since - (until - since), since)
        .values_list("action", "decision", "status")
        .distinct()
    )
    seen_before = {(a, outcome(d, s)) for a, d, s in before}
    firsts: dict[tuple[str, str], Any] = {}
    amounts = []
    rows = scope_actions(agent_ids, since, until).order_by("created_at")
    for row in rows.values(
        "pk", "created_at", "action", "resource", "decision", "status", "params"
    )[:20000]:
        key = (row["action"], outcome(row["decision"], row["status"]))
        if key not in seen_before and key not in firsts and len(firsts) < MAX_NOTABLE:
            firsts[key] = row
        amount = row["params"].get("amount") if isinstance(row["params"], dict) else None
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            amounts.append((amount, row))
    entries = [
        _action_entry(row, f"first {key[0]} {key[1]} since the break")
        for key, row in firsts.items()
    ]
    for amount, row in sorted(amounts, key=lambda pair: -pair[0])[:TOP_AMOUNTS]:
        entries.append(_action_entry(row, f"large amount: {amount:g}"))
    return entries


def _action_entry(row: dict[str, Any], why: str) -> dict[str, Any]:
    return {
        "at": row["created_at"].isoformat(),
        "kind": "action",
        "what": f"{why}: {row['action']} on {row['resource']} ({row['status']})",
        "action_id": str(row["pk"]),
    }


def timeline(
    *,
    agent_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    changes: list[Change],
    break_at: dt.datetime | None,
) -> list[dict[str, Any]]:
    entries = [
        {"at": c.at.isoformat(), "kind": "change", "what": c.summary, "actor": c.actor}
        for c in changes
    ]
    entries += _responses(agent_ids, start, end)
    entries += _alerts(agent_ids, start, end)
    if break_at is not None:
        entries += _notable(agent_ids, break_at, end)
        entries.append({"at": break_at.isoformat(), "kind": "break", "what": "behaviour changed"})
    entries.sort(key=lambda e: e["at"])
    return entries
