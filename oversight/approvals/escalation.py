"""Escalation: a held action goes to the admins, the next approvers, when nobody eligible
can decide it (people left, access revoked, fewer eligible than approvals still needed),
or when nobody answered by half its time.

Escalating is claimed with one conditional UPDATE (``escalated_at IS NULL``): a vote, the
periodic job and an access change racing each other escalate an action once, with one
audit event and one message to the admins. The periodic job and the checks after access
changes call the same services, so running them again changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from oversight.accounts import roles
from oversight.approvals.eligibility import action_case, approvers_for
from oversight.approvals.models import ApprovalVote
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.live import broadcasts
from oversight.live.publish import after_commit

NOBODY_ELIGIBLE = "nobody eligible can decide it"
HALF_TIME = "unanswered at half its time"
BATCH = 500


def _admins() -> Any:
    admin_group = Q(groups__name=roles.ADMIN)
    return get_user_model().objects.filter(Q(is_superuser=True) | admin_group, is_active=True)


def _notify_admins(action_id: uuid.UUID) -> None:
    """After commit: every active admin is told once (the event names the action), or,
    once an agent's escalations come thick and fast, by one digest that keeps count."""
    from oversight.notifications.services import notify_action_escalated

    notify_action_escalated(action_id=action_id, users=_admins().distinct())


@transaction.atomic
def action_escalate(*, action_id: uuid.UUID, reason: str, actor: Actor | None = None) -> bool:
    """Escalate a pending action to the admins. False when it is no longer pending or was
    escalated already (someone else got there first: nothing is recorded twice)."""
    now = timezone.now()
    claimed = Action.objects.filter(
        pk=action_id, status=ActionStatus.PENDING, escalated_at__isnull=True
    ).update(escalated_at=now, escalation_reason=reason[:200])
    if not claimed:
        return False
    action = Action.objects.select_related("agent").get(pk=action_id)
    audit_record(
        actor=actor or Actor.system("escalation"),
        verb=verbs.ACTION_ESCALATED,
        target=("gateway.action", str(action.pk), f"{action.action} on {action.resource}"[:200]),
        agent_id=action.agent_id,
        before={"escalated": False},
        after={"escalated": True, "why": reason, "to": "admins"},
    )
    after_commit(lambda: broadcasts.action_changed(action.pk, created=False))
    transaction.on_commit(partial(_notify_admins, action.pk), robust=True)
    return True


def _due(actions: Iterable[Action], now: Any) -> list[tuple[Action, str]]:
    """Which of these pending, unescalated actions escalate now, and why."""
    actions = list(actions)
    votes: dict[uuid.UUID, list[ApprovalVote]] = {}
    for vote in ApprovalVote.objects.filter(action__in=actions):
        votes.setdefault(vote.action_id, []).append(vote)
    cases = [action_case(action, votes.get(action.pk, [])) for action in actions]
    due = []
    for action, case, answer in zip(actions, cases, approvers_for(cases), strict=True):
        still_needed = max(action.approvals_required - case.approvals, 1)
        if len(answer.eligible) < still_needed:
            due.append(
                (
                    action,
                    f"{NOBODY_ELIGIBLE} ({len(answer.eligible)} eligible, "
                    f"{still_needed} approval{'s' if still_needed != 1 else ''} needed)",
                )
            )
        elif (
            action.expires_at
            and now >= action.created_at + (action.expires_at - action.created_at) / 2
        ):
            due.append((action, HALF_TIME))
    return due


def actions_escalate_due(
    *, agent_ids: Iterable[int] | None = None, action_ids: Iterable[uuid.UUID] | None = None
) -> int:
    """Escalate every pending action (of ``agent_ids``, or these ``action_ids``, or all)
    that nobody eligible can decide or nobody answered by half its time. Idempotent;
    returns how many escalated."""
    pending = Action.objects.filter(
        status=ActionStatus.PENDING, escalated_at__isnull=True
    ).select_related("agent__team")
    if agent_ids is not None:
        pending = pending.filter(agent_id__in=list(agent_ids))
    if action_ids is not None:
        pending = pending.filter(pk__in=list(action_ids))
    escalated = 0
    for action, reason in _due(pending.order_by("created_at")[:BATCH], timezone.now()):
        escalated += action_escalate(action_id=action.pk, reason=reason)
    return escalated


def escalate_after_access_change(agent_ids: Iterable[int]) -> None:
    """Schedule, after commit, the check of the agents' held actions: access or reviewers
    changed, so some may have nobody left who can decide them."""
    ids = sorted(set(agent_ids))
    transaction.on_commit(partial(actions_escalate_due, agent_ids=ids), robust=True)
