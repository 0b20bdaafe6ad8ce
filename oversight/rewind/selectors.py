"""Reads of undo for a person: what an action's page shows of it, and how far a rewind
has got."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from oversight.agents.constants import CHANGE
from oversight.agents.permissions import user_has_agent_perm
from oversight.gateway.constants import FINAL, ActionStatus
from oversight.gateway.models import Action
from oversight.rewind.models import ItemState, Rewind, RewindState
from oversight.rewind.plan import CANCEL, CANCELLED
from oversight.rewind.runner import OPEN
from oversight.rewind.services import undo_deadline, undo_refusal

# Final without running: nothing to undo.
NEVER_RAN = FINAL - {ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.ROLLED_BACK}


def undo_panel(*, action: Action, user: Any) -> dict[str, Any]:
    """An action's undo: whether it can be undone now (and why not), by whom, until when,
    and its compensations; or, for a compensation, the action it undoes."""
    now = timezone.now()
    return {
        "refusal": undo_refusal(action, now),
        # Counted from when it finished: meaningful once it has run.
        "deadline": undo_deadline(action) if action.status == ActionStatus.SUCCEEDED else None,
        "never_ran": action.status in NEVER_RAN,
        "may_undo": user_has_agent_perm(user, CHANGE, action.agent),
        "compensations": list(action.compensations.order_by("-created_at")),
        "undoes": action.compensates,
    }


# How an ended undo counts for a person (``rewind_progress``).
UNDONE, DENIED, CONFLICT, FAILED = "undone", "denied", "conflict", "failed"


def _ended_as(outcome: str) -> str:
    """undone; denied (its decision, or a reviewer, said no; or it expired or was
    cancelled: it never ran); conflict (changed since, left alone); or failed: it failed,
    was not reversible after all, had no compensator (skipped), was refused, or is gone."""
    if outcome in (UNDONE, CONFLICT):
        return outcome
    if outcome in NEVER_RAN:
        return DENIED
    return FAILED


TO_CANCEL = "to_cancel"


def rewind_progress(*, rewind: Rewind) -> dict[str, int]:
    """Its items by state, as a person reads them: an undo that has ended (reported, or
    denied) counts as ended at once, before the runner's next pass records it; the ended
    ones are also counted by how they ended (undone, denied, conflict, failed); of those
    left, the actions cancelled as it started (they had not run), or to be cancelled as
    it starts (before it has), are counted apart."""
    counts = {state: 0 for state in ItemState.values} | dict.fromkeys(
        (TO_CANCEL, CANCELLED, UNDONE, DENIED, CONFLICT, FAILED), 0
    )
    rows = rewind.items.values_list(
        "state", "compensation__status", "compensation__compensation_outcome", "outcome"
    )
    for row in rows:
        state, ended = _counted_as(*row)
        counts[state] += 1
        if ended:
            counts[ended] += 1
    return counts


def _counted_as(
    state: str, status: str | None, reported: str | None, outcome: str
) -> tuple[str, str]:
    """An item's state as a person reads it, and, once ended, how (``rewind_progress``)."""
    if state == ItemState.REQUESTED and status not in OPEN:
        state, outcome = ItemState.DONE, reported or status or "gone"  # as the runner will
    if state == ItemState.LEFT and outcome == CANCELLED:
        state = CANCELLED
    elif state == ItemState.LEFT and outcome.startswith(CANCEL):
        state = TO_CANCEL  # not started yet: cancelled as it starts
    return state, _ended_as(outcome) if state == ItemState.DONE else ""


# An item's undo, in the words of the counts above the table (rewind/_progress.html).
_SHOWN = {
    ItemState.PENDING: "Waiting",
    ItemState.REQUESTED: "Asked for",
    ItemState.LEFT: "Left as it is",
    CANCELLED: "Cancelled: had not run",
    TO_CANCEL: "To cancel as it starts",
    UNDONE: "Undone",
    DENIED: "Undo denied",
    CONFLICT: "Conflict: changed since",
    FAILED: "Failed",
}


def item_shown_as(item: Any, *, rewind_cancelled: bool) -> str:
    """One item's Undo column, counted as ``rewind_progress`` counts it."""
    compensation = item.compensation
    state, ended = _counted_as(
        item.state,
        compensation.status if compensation else None,
        compensation.compensation_outcome if compensation else None,
        item.outcome,
    )
    if state == ItemState.PENDING and rewind_cancelled:
        return "Not asked for: cancelled"
    return _SHOWN[ended or state]


_SHORT = (
    (DENIED, "undo denied", "undos denied"),
    (CONFLICT, "conflict (changed since, left alone)", "conflicts (changed since, left alone)"),
    (FAILED, "failed", "failed"),
)


def rewind_verdict(*, rewind: Rewind, counts: dict[str, int]) -> dict[str, str]:
    """The heading of a rewind's page, and, once it has ended without undoing all it was
    to undo, a plain sentence of what became of the rest: "Done: nothing undone", "Of 11
    actions to undo, none was undone: 11 undos denied." Its state alone otherwise."""
    heading = str(rewind.get_state_display())
    to_undo, undone = rewind.summary.get("to_undo", 0), counts[UNDONE]
    if rewind.state not in (RewindState.DONE, RewindState.CANCELLED) or undone >= to_undo:
        return {"heading": heading, "shortfall": ""}
    if undone:
        heading = f"{heading}: {undone} of {to_undo} undone"
        done = f"{undone} {'was' if undone == 1 else 'were'} undone"
    else:
        heading, done = f"{heading}: nothing undone", "none was undone"
    rest = [f"{counts[key]} {one if counts[key] == 1 else many}" for key, one, many in _SHORT]
    if counts[ItemState.REQUESTED]:
        rest.append(f"{counts[ItemState.REQUESTED]} still on their way")
    if counts[ItemState.PENDING]:
        rest.append(f"{counts[ItemState.PENDING]} not asked for")
    rest = [part for part in rest if not part.startswith("0 ")]
    actions = "action" if to_undo == 1 else "actions"
    return {
        "heading": heading,
        "shortfall": f"Of {to_undo} {actions} to undo, {done}: " + ", ".join(rest) + ".",
    }
