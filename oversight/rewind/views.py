"""Undo of one action, from its page (people who may change the agent: owners, admins)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from oversight.agents.access import AgentAccessDenied
from oversight.agents.constants import CHANGE
from oversight.agents.permissions import user_has_agent_perm
from oversight.approvals.selectors import action_get
from oversight.audit.actors import Actor
from oversight.rewind.services import action_undo

_SAID = {
    "allowed": "The undo was allowed, for the agent's compensator to run (said below once run).",
    "pending": "The undo is held for a reviewer, like any action the rules hold.",
    "denied": "The undo was denied by the agent's policy.",
    "halted": "The undo was halted: a kill switch is engaged.",
}


@login_required
@require_POST
def action_undo_view(request: HttpRequest, action_id: uuid.UUID) -> HttpResponse:
    action = action_get(user=request.user, action_id=action_id)  # 404 unless visible
    if not user_has_agent_perm(request.user, CHANGE, action.agent):
        raise AgentAccessDenied("Only the agent's owners and admins undo its actions.")
    try:
        compensation = action_undo(actor=Actor.for_user(request.user), action=action)
    except ValidationError as exc:
        messages.error(request, f"Not undone: {' '.join(exc.messages)}")
    else:
        said = _SAID.get(compensation.status, f"The undo is {compensation.status}.")
        why = "; ".join(f"{r.get('name')}: {r.get('detail')}" for r in compensation.reasons or [])
        if compensation.status in ("denied", "halted") and why:
            said = f"{said[:-1]}: {why}."
        messages.info(request, said)
    return redirect("approvals:action", action_id=action.pk)
