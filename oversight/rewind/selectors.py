"""Reads of undo for a person: what an action's page shows of it, and how far a rewind
has got."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from oversight.agents.constants import CHANGE
from oversight.agents.permissions import user_has_agent_perm
from oversight.gateway.constants import FINAL, ActionStatus
from oversight.gateway.models import Action
from oversight.rewind.bulk import CANCELLED, OPEN
from oversight.rewind.models import ItemState, Rewind
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


def rewind_progress(*, rewind: Rewind) -> dict[str, int]:
    """Its items by state, as a person reads them: an undo that has ended (reported, or
    denied) counts as ended at once, before the runner's next pass records it; of those
    left, the actions cancelled as it started (they had not run) are counted apart."""
    counts = {state: 0 for state in ItemState.values} | {CANCELLED: 0}
    rows = rewind.items.values_list("state", "compensation__status", "outcome")
    for state, status, outcome in rows:
        if state == ItemState.REQUESTED and status not in OPEN:
            state = ItemState.DONE
        if state == ItemState.LEFT and outcome == CANCELLED:
            state = CANCELLED
        counts[state] += 1
    return counts
