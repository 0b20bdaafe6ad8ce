"""What a bulk rewind of a window would do (bulk.py makes it durable, runner.py runs it).

rewind_plan      every action of the window, by class: what would be undone and how,
                 what would be cancelled (it has not run), what cannot be undone and
                 why; nothing written
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.gateway.constants import ActionStatus
from oversight.gateway.lifecycle import CANCELLABLE
from oversight.gateway.models import Action
from oversight.policy.engine.patterns import check_pattern, resource_matcher
from oversight.rewind.models import ItemState
from oversight.rewind.services import undo_blocked


@dataclass(frozen=True)
class Scope:
    """Which of an agent's actions a rewind covers."""

    agent: Agent
    since: dt.datetime
    until: dt.datetime
    release_version: int | None = None
    session_id: str = ""
    resource: str = "*"

    def check(self) -> None:
        if self.since >= self.until:
            raise ValidationError("The window must start before it ends.")
        try:
            check_pattern(self.resource, kind="resource")
        except ValueError as exc:
            raise ValidationError({"resource": str(exc)}) from None


_FIELDS = (
    "pk",
    "action",
    "resource",
    "status",
    "reversibility",
    "undo_contract",
    "created_at",
    "finished_at",
    "started_at",
)


def _rows(scope: Scope) -> list[dict[str, Any]]:
    """The window's actions, newest first (compensations are not rewound themselves)."""
    found = Action.objects.filter(
        agent=scope.agent,
        created_at__gte=scope.since,
        created_at__lt=scope.until,
        compensates__isnull=True,
    )
    if scope.release_version is not None:
        found = found.filter(release_version=scope.release_version)
    if scope.session_id:
        found = found.filter(session_id=scope.session_id)
    rows = list(found.order_by("-created_at", "-pk").values(*_FIELDS))
    matches = resource_matcher(scope.resource)
    return rows if matches is None else [r for r in rows if matches(r["resource"])]


CANCEL = "cancel:"  # an item's code: an action that has not run, cancelled as it starts
CANCELLED = "cancelled"  # and once it was
RAN_AFTER_PLAN = "ran_after_plan"  # or it ran between the plan and the start: not in it
STARTED = "started"  # an approved action the agent started, its outcome not reported
RAN = (ActionStatus.ALLOWED, ActionStatus.SUCCEEDED, ActionStatus.FAILED)


def item_class(row: dict[str, Any], now: dt.datetime) -> tuple[str, str]:
    """(item state, why) for one action: pending (why: its undo's action), or left with
    the reason code of ``undo_blocked``; an action that has not run yet (held, or approved
    and not started) is left to be cancelled when the rewind starts (``cancel:<status>``),
    so that nothing of the window runs after it was undone."""
    if row["status"] in CANCELLABLE and row["started_at"] is not None:
        return ItemState.LEFT, STARTED  # it may have run; its outcome is not known
    if row["status"] in CANCELLABLE:
        return ItemState.LEFT, CANCEL + row["status"]
    code, _sentence = undo_blocked(
        status=row["status"],
        reversibility=row["reversibility"],
        contract=row["undo_contract"],
        done_at=row["finished_at"] or row["created_at"],
        now=now,
    )
    if code:
        return ItemState.LEFT, code
    return ItemState.PENDING, row["undo_contract"]["action"]


def rewind_plan(*, scope: Scope, examples: int = 100) -> dict[str, Any]:
    """What a rewind of ``scope`` would do, written nowhere."""
    scope.check()
    now = timezone.now()
    rows = _rows(scope)
    classes: Counter[str] = Counter()
    undo_by: Counter[str] = Counter()
    left: Counter[str] = Counter()
    to_cancel = 0
    listed = []
    for row in rows:
        state, why = item_class(row, now)
        classes[row["reversibility"] or "unknown"] += 1
        if state == ItemState.PENDING:
            undo_by[f"{row['action']} -> {why}"] += 1
        elif why.startswith(CANCEL):
            to_cancel += 1
        else:
            left[why] += 1
        if len(listed) < examples:
            listed.append({**row, "state": state, "why": why})
    to_undo = sum(undo_by.values())
    return {
        "since": scope.since,
        "until": scope.until,
        "actions": len(rows),
        "to_undo": to_undo,
        "to_cancel": to_cancel,
        "left": len(rows) - to_undo - to_cancel,
        "by_class": dict(classes),
        "undo_by": dict(undo_by),
        "left_because": dict(left),
        "needs_approval": to_undo >= settings.REWIND_APPROVAL_THRESHOLD,
        "examples": listed,
        "rows": rows,
    }
