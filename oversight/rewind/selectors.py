"""Reads of undo for a person: what an action's page shows of it."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from oversight.agents.constants import CHANGE
from oversight.agents.permissions import user_has_agent_perm
from oversight.gateway.models import Action
from oversight.rewind.services import undo_deadline, undo_refusal


def undo_panel(*, action: Action, user: Any) -> dict[str, Any]:
    """An action's undo: whether it can be undone now (and why not), by whom, until when,
    and its compensations; or, for a compensation, the action it undoes."""
    now = timezone.now()
    return {
        "refusal": undo_refusal(action, now),
        "deadline": undo_deadline(action),
        "may_undo": user_has_agent_perm(user, CHANGE, action.agent),
        "compensations": list(action.compensations.order_by("-created_at")),
        "undoes": action.compensates,
    }
