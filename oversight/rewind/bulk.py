"""Bulk rewind: undo what an agent did in a window, newest first.

    rewind_plan      (plan.py) what a rewind of a scope would do, written nowhere
    rewind_create    the plan made durable: one item per action, in order; a large one
                     waits for a second person's approval (REWIND_APPROVAL_THRESHOLD)
    rewind_step      (runner.py) the runner, a beat job every few seconds and after each
                     change: asks for the undo of the next items, newest first; on one
                     resource strictly one after the other (an older action's undo
                     expects the state the newer one's undo leaves); records each outcome
    pause, resume, approve, cancel

Nothing is undone twice: an item moves from pending to requested in the same transaction
as its compensation is decided (a crash leaves it pending, with no compensation), and
``undo_prepare`` refuses an action whose undo is already on its way. A compensator that
dies mid-way gives its lease back, and the next one reads the state first: an undo that
already happened reads as a conflict, not as a second undo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from oversight.agents.locking import agent_lock
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.constants import ActionStatus
from oversight.gateway.lifecycle import actions_cancel_not_run, actions_lock_cancellable
from oversight.gateway.models import Action
from oversight.rewind.models import ItemState, Rewind, RewindItem, RewindState
from oversight.rewind.plan import (
    CANCEL,
    CANCELLED,
    RAN,
    RAN_AFTER_PLAN,
    STARTED,
    Scope,
    item_class,
    rewind_plan,
)

RUNNER = Actor.system("rewind")
LIVE = (RewindState.AWAITING_APPROVAL, RewindState.RUNNING, RewindState.PAUSED)  # not ended


def audit_rewind(actor: Actor, verb: str, rewind: Rewind, **after: Any) -> None:
    audit_record(
        actor=actor,
        verb=verb,
        target=("rewind.rewind", str(rewind.pk), str(rewind)[:200]),
        agent_id=rewind.agent_id,
        after={"state": rewind.state, **after},
    )


@dataclass(frozen=True)
class Shown:
    """What the plan a person starts said it would do."""

    to_undo: int
    to_cancel: int


class PlanChanged(ValidationError):
    """The window would now undo or cancel more than the plan that was shown said."""


class RewindUnderWay(ValidationError):
    """A rewind of the agent over an overlapping window has not ended: ``rewind``."""

    def __init__(self, rewind: Rewind) -> None:
        super().__init__(
            f"A rewind of {rewind.agent.slug} over an overlapping window is "
            f"{rewind.get_state_display().lower()} (rewind {rewind.pk}, "
            f"{rewind.since:%Y-%m-%d %H:%M:%S} to {rewind.until:%Y-%m-%d %H:%M:%S} UTC): "
            "nothing new was started. Let it end, or cancel it, first."
        )
        self.rewind = rewind


def _under_way(scope: Scope) -> Rewind | None:
    """The oldest rewind of the agent, not ended, whose window overlaps the scope's."""
    return (
        Rewind.objects.select_related("agent")
        .filter(agent=scope.agent, state__in=LIVE, since__lt=scope.until, until__gt=scope.since)
        .order_by("created_at", "pk")
        .first()
    )


def _check_shown(plan: dict[str, Any], shown: Shown) -> None:
    if plan["to_undo"] <= shown.to_undo and plan["to_cancel"] <= shown.to_cancel:
        return
    raise PlanChanged(
        f"What the window holds changed since the plan was shown: it would now undo "
        f"{plan['to_undo']} actions (the plan said {shown.to_undo}) and cancel "
        f"{plan['to_cancel']} (the plan said {shown.to_cancel}). Nothing was started: "
        "this is the plan as it is now, to check and start again."
    )


@transaction.atomic
def rewind_create(*, actor: Actor, scope: Scope, shown: Shown | None = None) -> Rewind:
    """Plan the rewind and keep the plan; it runs at once, or waits for a second person
    when it would undo REWIND_APPROVAL_THRESHOLD actions or more.

    Refused (nothing written) while a rewind of the agent over an overlapping window has
    not ended (``RewindUnderWay``), and, given the plan a person was ``shown``, when the
    window would now undo or cancel more than it said (``PlanChanged``): a late report
    made an action undoable, or a held one ran."""
    # Two starts of one window (a double click, a resubmitted form) collide here: each
    # reads "no rewind under way" and would make its own. The agent's row, locked until
    # commit, puts them in line, and the second then sees the first's rewind. NO KEY
    # UPDATE (agent_lock) lets the agent's decisions go on meanwhile.
    scope.check()
    agent_lock(scope.agent.pk)
    under_way = _under_way(scope)
    if under_way is not None:
        raise RewindUnderWay(under_way)
    plan = rewind_plan(scope=scope, examples=0)
    if not plan["actions"]:
        raise ValidationError("No action of the agent in that window: nothing to rewind.")
    if not plan["to_undo"] and not plan["to_cancel"]:
        raise ValidationError(
            "None of the window's actions can be undone or cancelled (see why in the plan): "
            "nothing to rewind."
        )
    if shown is not None:
        _check_shown(plan, shown)
    now = timezone.now()
    rewind = Rewind.objects.create(
        agent=scope.agent,
        since=scope.since,
        until=scope.until,
        release_version=scope.release_version,
        session_id=scope.session_id,
        resource=scope.resource,
        state=RewindState.AWAITING_APPROVAL if plan["needs_approval"] else RewindState.RUNNING,
        summary={
            k: plan[k] for k in ("actions", "to_undo", "to_cancel", "left", "by_class", "undo_by")
        }
        | {"left_because": plan["left_because"]},
        created_by_id=actor.user_id,
    )
    items = []
    for position, row in enumerate(plan["rows"]):
        state, why = item_class(row, now)
        items.append(
            RewindItem(
                rewind=rewind,
                action_id=row["pk"],
                position=position,
                resource=row["resource"][:500],
                state=state,
                outcome="" if state == ItemState.PENDING else why[:20],
            )
        )
    RewindItem.objects.bulk_create(items, batch_size=2000)
    if rewind.state == RewindState.RUNNING:
        # The actions it cancels, locked before its audit event, as a vote takes them.
        actions_lock_cancellable(actions=Action.objects.filter(pk__in=_to_cancel(rewind)))
    audit_rewind(actor, verbs.REWIND_CREATED, rewind, summary=rewind.summary)
    if rewind.state == RewindState.RUNNING:
        _cancel_not_run(actor, rewind)
    else:
        _tell_approvers(rewind)
    rewind_kick(rewind.pk)
    return rewind


def _tell_approvers(rewind: Rewind) -> None:
    """After commit: the people who may approve the rewind (the agent's owners and
    admins, but not who started it) are told it waits for one of them."""
    from oversight.agents.constants import CHANGE
    from oversight.agents.permissions import users_with_agent_perm  # agents -> rewind
    from oversight.notifications.constants import Kind
    from oversight.notifications.services import notify_people_after_commit

    agent, started_by = rewind.agent, rewind.created_by_id
    to_undo = rewind.summary.get("to_undo", 0)
    notify_people_after_commit(
        kind=Kind.REWIND_AWAITING_APPROVAL,
        team=agent.team,
        users=[u for u in users_with_agent_perm(agent, CHANGE) if u.pk != started_by],
        title=f"{agent.name}: a rewind of {to_undo} actions awaits your approval",
        body=(
            f"It would undo {to_undo} of {agent.name}'s actions from"
            f" {rewind.since:%Y-%m-%d %H:%M} to {rewind.until:%Y-%m-%d %H:%M} UTC; a rewind"
            " this large starts only once a second person approves it."
        ),
        link=reverse("rewind:detail", args=[rewind.pk]),
        event=f"rewind:{rewind.pk}:awaiting_approval",
        agent=agent,
    )


def _cancel_items(rewind: Rewind) -> QuerySet[RewindItem]:
    """The rewind's items whose actions it cancels as it starts (they have not run)."""
    return rewind.items.filter(state=ItemState.LEFT, outcome__startswith=CANCEL)


def _to_cancel(rewind: Rewind) -> QuerySet[RewindItem]:
    return _cancel_items(rewind).values("action_id")


def _cancel_not_run(actor: Actor, rewind: Rewind) -> None:
    """As the rewind starts: its window's actions that have not run are cancelled (held
    ones would otherwise run once approved, after their window was undone). One that was
    decided meanwhile is left, with what became of it."""
    items = _cancel_items(rewind)
    action_ids = list(items.values_list("action_id", flat=True))
    if not action_ids:
        return
    why = f"a rewind of its window started (rewind {rewind.pk})"
    actions = Action.objects.filter(pk__in=action_ids)
    cancelled = actions_cancel_not_run(actor=actor, actions=actions, why=why)
    items.filter(action_id__in=cancelled).update(outcome=CANCELLED)
    for item in items.exclude(action_id__in=cancelled).select_related("action"):
        status = item.action.status
        if status in RAN:
            item.outcome = RAN_AFTER_PLAN
        elif item.action.started_at is not None and status == ActionStatus.APPROVED:
            item.outcome = STARTED  # started since the plan: it may have run
        else:
            item.outcome = f"not_run:{status}"[:20]
        item.save(update_fields=["outcome"])


def locked(rewind: Rewind) -> Rewind:
    return Rewind.objects.select_for_update().get(pk=rewind.pk)


def _move(actor: Actor, rewind: Rewind, frm: tuple[str, ...], to: str, verb: str) -> Rewind:
    rewind = locked(rewind)
    if rewind.state not in frm:
        raise ValidationError(f"The rewind is {rewind.get_state_display().lower()}.")
    rewind.state = to
    fields = ["state"]
    if to == RewindState.CANCELLED:
        rewind.finished_at = timezone.now()
        fields.append("finished_at")
    rewind.save(update_fields=fields)
    audit_rewind(actor, verb, rewind)
    rewind_kick(rewind.pk)
    return rewind


@transaction.atomic
def rewind_approve(*, actor: Actor, rewind: Rewind) -> Rewind:
    if actor.user_id is None or actor.user_id == rewind.created_by_id:
        raise ValidationError("A large rewind is approved by a second person.")
    rewind = _move(
        actor, rewind, (RewindState.AWAITING_APPROVAL,), RewindState.RUNNING, verbs.REWIND_APPROVED
    )
    Rewind.objects.filter(pk=rewind.pk).update(approved_by_id=actor.user_id)
    _cancel_not_run(actor, rewind)
    return rewind


@transaction.atomic
def rewind_pause(*, actor: Actor, rewind: Rewind) -> Rewind:
    """No more undos are asked for; those already asked for go on."""
    return _move(actor, rewind, (RewindState.RUNNING,), RewindState.PAUSED, verbs.REWIND_PAUSED)


@transaction.atomic
def rewind_resume(*, actor: Actor, rewind: Rewind) -> Rewind:
    return _move(actor, rewind, (RewindState.PAUSED,), RewindState.RUNNING, verbs.REWIND_RESUMED)


@transaction.atomic
def rewind_cancel(*, actor: Actor, rewind: Rewind) -> Rewind:
    return _move(actor, rewind, LIVE, RewindState.CANCELLED, verbs.REWIND_CANCELLED)


def rewind_kick(rewind_id: int) -> None:
    """A step of the rewind soon: after the current transaction commits, as a job."""
    from oversight.live.publish import after_commit
    from oversight.rewind.tasks import rewind_step_task

    after_commit(lambda: rewind_step_task.delay(rewind_id))
