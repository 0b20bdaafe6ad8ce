"""Actions the agent may have run and never reported.

Two kinds of action may have run without Oversight knowing how they ended: an approved one
the agent claimed the run of (``started_at``), and an allowed one whose agent said, when
it asked, that it reports its outcome (``reports_outcome``: the SDK's guard, oversight-mcp
and the adapters say so). One that is never reported (the agent's process died, its
client went away mid-call) stays so, and the agent's identical calls are then told it may
have run and are not run again (the SDK, oversight-mcp). Nothing moves it on but a
person: past UNREPORTED_AFTER_MINUTES, the agent's owner and reviewers are alerted, with
the actions as evidence, so that someone checks the system the agent acts on and records
what happened on each action's page (gateway/settling.py).

The alert lists the actions still unreported, and resolves itself once none is left. A
retired agent's are alerted on too: retiring leaves them as they are, the agent can no
longer report them, and its owners may still record what happened. An allowed action
whose agent did not say it reports is not alerted on: the API allows asking without
reporting, and such an agent leaves every allowed action unreported.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import Coalesce

from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.monitoring import constants as c
from oversight.monitoring.constants import AlertKind, Severity
from oversight.monitoring.detectors import EVIDENCE_FIELDS, evidence_item
from oversight.monitoring.services import Finding


def unreported_actions(*, cutoff: dt.datetime) -> QuerySet[Action]:
    """The actions that may have run and were not reported by ``cutoff``, with ``since``
    (when they were started, or allowed). Read through the two partial indexes
    (action_started_unreported, action_allowed_unreported)."""
    return Action.objects.filter(
        Q(status=ActionStatus.APPROVED, started_at__lt=cutoff)
        | Q(status=ActionStatus.ALLOWED, reports_outcome=True, created_at__lt=cutoff)
    ).annotate(since=Coalesce("started_at", "created_at"))


def unreported_findings(*, now: dt.datetime) -> list[Finding]:
    """One finding per agent with actions unreported past the threshold."""
    unreported = unreported_actions(cutoff=now - dt.timedelta(minutes=c.UNREPORTED_AFTER_MINUTES))
    per_agent = (
        unreported.order_by()
        .values("agent_id")
        .annotate(count=Count("id"), oldest=Min("since"))
        .order_by("agent_id")
    )
    return [_finding(row, unreported.filter(agent_id=row["agent_id"]), now) for row in per_agent]


def _finding(row: dict[str, Any], actions: QuerySet[Action], now: dt.datetime) -> Finding:
    count = row["count"]
    evidence = actions.order_by("-since").values(*EVIDENCE_FIELDS, "since")
    return Finding(
        agent_id=row["agent_id"],
        kind=AlertKind.UNREPORTED,
        severity=Severity.WARNING,
        dedupe_key=AlertKind.UNREPORTED,
        title=(
            f"{count} action{'s' if count != 1 else ''} the agent may have run and never reported: "
            "an owner records what happened"
        ),
        numbers={
            "unreported_actions": count,
            "unreported_for_at_least_minutes": c.UNREPORTED_AFTER_MINUTES,
            "oldest_minutes_ago": int((now - row["oldest"]).total_seconds() // 60),
        },
        actions=[evidence_item(r, r["since"]) for r in evidence[: c.MAX_EVIDENCE_ACTIONS]],
        current=True,  # the actions still unreported, no more
    )
