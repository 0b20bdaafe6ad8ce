"""Reads for reviewers: the queue, one held action in full, an action's whole story."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch
from django.http import Http404

from oversight.agents.constants import APPROVE, VIEW
from oversight.agents.selectors import agents_with_perm
from oversight.approvals.eligibility import Eligibility, action_case, approvers_for
from oversight.approvals.models import ApprovalVote, Vote
from oversight.audit.models import AuditEvent
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.lib.humanize import pretty_json

RECENT = 5


def approval_queue(*, user: Any) -> list[Action]:
    """Held actions this person may decide, most urgent first."""
    votes = Prefetch("votes", queryset=ApprovalVote.objects.select_related("voter"))
    return list(
        Action.objects.filter(
            status=ActionStatus.PENDING, agent__in=agents_with_perm(user=user, perm=APPROVE)
        )
        .select_related("agent__owner", "agent__team")
        .prefetch_related(votes)
        .order_by("expires_at", "created_at")
    )


def queue_approvers(actions: list[Action]) -> dict[uuid.UUID, Eligibility]:
    """Who may decide each action, for many cards at once (a fixed number of queries)."""
    cases = [action_case(action, list(action.votes.all())) for action in actions]
    return {a.pk: answer for a, answer in zip(actions, approvers_for(cases), strict=True)}


def queue_item_context(action: Action, approvers: Eligibility | None = None) -> dict[str, Any]:
    """Everything a reviewer needs to decide one held action, including who may approve
    it and who voted (``approvers``: from ``queue_approvers`` when already known)."""
    recent = list(
        Action.objects.filter(agent_id=action.agent_id)
        .exclude(pk=action.pk)
        .order_by("-created_at")[:RECENT]
    )
    votes = list(action.votes.select_related("voter"))
    approvals = sum(1 for v in votes if v.vote == Vote.APPROVE)
    if approvers is None:
        approvers = approvers_for([action_case(action, votes)])[0]
    return {
        "action": action,
        "agent": action.agent,
        "params_json": pretty_json(action.params),
        "before_json": pretty_json(action.before),
        "recent": recent,
        "votes": votes,
        "approvals": approvals,
        "still_needed": max(action.approvals_required - approvals, 0),
        "approvers": approvers,
    }


def action_get(*, user: Any, action_id: uuid.UUID) -> Action:
    """An action of an agent the person may view; 404 otherwise."""
    action = (
        Action.objects.select_related("agent__owner", "agent__team")
        .filter(pk=action_id, agent__in=agents_with_perm(user=user, perm=VIEW))
        .first()
    )
    if action is None:
        raise Http404("No such action.")
    return action


def action_story(*, action: Action) -> list[AuditEvent]:
    """Every audit event about this action, oldest first."""
    return list(
        AuditEvent.objects.filter(target_type="gateway.action", target_id=str(action.pk)).order_by(
            "seq"
        )
    )


def recent_actions(*, user: Any, agent_id: int | None = None, limit: int = 25) -> list[Action]:
    """The live feed's first page: newest actions of agents the person may view."""
    actions = Action.objects.filter(agent__in=agents_with_perm(user=user, perm=VIEW))
    if agent_id is not None:
        actions = actions.filter(agent_id=agent_id)
    return list(actions.select_related("agent").order_by("-created_at")[:limit])
