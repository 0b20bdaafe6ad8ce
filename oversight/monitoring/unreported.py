"""Approved actions the agent started and never reported: they may have run.

The agent claims the run of an approved action before running it (``started_at``); one
that never reports its outcome (its process died, its client went away mid-call) leaves
the action so, and the agent's identical calls are then told it may have run and are not
run again (the SDK, oversight-mcp). Nothing moves it on but a person: past
UNREPORTED_AFTER_MINUTES, the agent's owner and reviewers are alerted, with the actions
as evidence, so that someone checks the system the agent acts on and records what
happened on each action's page (gateway/settling.py).

The alert lists the actions still unreported, and resolves itself once none is left. A
retired agent's are alerted on too: retiring leaves them as they are, the agent can no
longer report them, and its owners may still record what happened. Allowed actions the
agent never reported are not alerted on: an agent that asks without reporting (the API
permits it) leaves every allowed action so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Min, QuerySet

from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.monitoring import constants as c
from oversight.monitoring.constants import AlertKind, Severity
from oversight.monitoring.detectors import EVIDENCE_FIELDS, evidence_item
from oversight.monitoring.services import Finding


def unreported_findings(*, now: dt.datetime) -> list[Finding]:
    """One finding per agent with started, unreported actions older than the threshold.
    Read through the partial index of started approved actions (action_started_unreported)."""
    cutoff = now - dt.timedelta(minutes=c.UNREPORTED_AFTER_MINUTES)
    unreported = Action.objects.filter(status=ActionStatus.APPROVED, started_at__lt=cutoff)
    per_agent = (
        unreported.order_by()
        .values("agent_id")
        .annotate(count=Count("id"), oldest=Min("started_at"))
        .order_by("agent_id")
    )
    return [_finding(row, unreported.filter(agent_id=row["agent_id"]), now) for row in per_agent]


def _finding(row: dict[str, Any], actions: QuerySet[Action], now: dt.datetime) -> Finding:
    count = row["count"]
    many = count != 1
    evidence = actions.order_by("-started_at").values(*EVIDENCE_FIELDS, "started_at")
    return Finding(
        agent_id=row["agent_id"],
        kind=AlertKind.UNREPORTED,
        severity=Severity.WARNING,
        dedupe_key=AlertKind.UNREPORTED,
        title=(
            f"{count} approved action{'s' if many else ''} started and never reported: "
            f"{'they' if many else 'it'} may have run; an owner records what happened"
        ),
        numbers={
            "unreported_actions": count,
            "started_at_least_minutes_ago": c.UNREPORTED_AFTER_MINUTES,
            "oldest_started_minutes_ago": int((now - row["oldest"]).total_seconds() // 60),
        },
        actions=[evidence_item(r, r["started_at"]) for r in evidence[: c.MAX_EVIDENCE_ACTIONS]],
        current=True,  # the actions still unreported, no more
    )
