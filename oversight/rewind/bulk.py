"""Bulk rewind: undo what an agent did in a window, newest first.

    rewind_plan      what a rewind of a scope would do: every action of the window, by
                     class, what would be undone and how, what cannot be (nothing written)
    rewind_create    the plan made durable: one item per action, in order; a large one
                     waits for a second person's approval (REWIND_APPROVAL_THRESHOLD)
    rewind_step      the runner (a beat job every few seconds, and after each change):
                     asks for the undo of the next items, newest first; on one resource
                     strictly one after the other (an older action's undo expects the
                     state the newer one's undo leaves); records each outcome
    pause, resume, approve, cancel

Nothing is undone twice: an item moves from pending to requested in the same transaction
as its compensation is decided (a crash leaves it pending, with no compensation), and
``undo_prepare`` refuses an action whose undo is already on its way. A compensator that
dies mid-way gives its lease back, and the next one reads the state first: an undo that
already happened reads as a conflict, not as a second undo.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from oversight.agents.locking import agent_lock
from oversight.agents.models import Agent
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.constants import ActionStatus
from oversight.gateway.lifecycle import (
    CANCELLABLE,
    actions_cancel_not_run,
    actions_lock_cancellable,
)
from oversight.gateway.models import Action
from oversight.policy.engine.patterns import check_pattern, resource_matcher
from oversight.rewind.models import ItemState, Rewind, RewindItem, RewindState
from oversight.rewind.services import (
    UNDO_FIELDS,
    live_undos,
    undo_blocked,
    undo_decide,
    undo_prepare,
    undo_tokens,
)

RUNNER = Actor.system("rewind")
STEP_SIZE = 200  # undos asked for per step at most
STEP_LEASE = dt.timedelta(seconds=30)  # a step that dies holds its rewind this long
ASK_BATCH = 10  # undos asked for in one transaction
ASK_THREADS = 3  # batches asked for at a time by a step (each undo on a resource of its own)
FOLLOW_EVERY = 0.2  # seconds between a following step's passes while nothing moved
OPEN = (ActionStatus.PENDING, ActionStatus.ALLOWED, ActionStatus.APPROVED)  # an undo on its way
LIVE = (RewindState.AWAITING_APPROVAL, RewindState.RUNNING, RewindState.PAUSED)  # not ended


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


def _class(row: dict[str, Any], now: dt.datetime) -> tuple[str, str]:
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
        state, why = _class(row, now)
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


def _audit(actor: Actor, verb: str, rewind: Rewind, **after: Any) -> None:
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
        state, why = _class(row, now)
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
    _audit(actor, verbs.REWIND_CREATED, rewind, summary=rewind.summary)
    if rewind.state == RewindState.RUNNING:
        _cancel_not_run(actor, rewind)
    rewind_kick(rewind.pk)
    return rewind


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


def _locked(rewind: Rewind) -> Rewind:
    return Rewind.objects.select_for_update().get(pk=rewind.pk)


def _move(actor: Actor, rewind: Rewind, frm: tuple[str, ...], to: str, verb: str) -> Rewind:
    rewind = _locked(rewind)
    if rewind.state not in frm:
        raise ValidationError(f"The rewind is {rewind.get_state_display().lower()}.")
    rewind.state = to
    fields = ["state"]
    if to == RewindState.CANCELLED:
        rewind.finished_at = timezone.now()
        fields.append("finished_at")
    rewind.save(update_fields=fields)
    _audit(actor, verb, rewind)
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


_ITEM_FIELDS = ("state", "action", "compensation", "outcome", "detail")


def _pending_items(item_ids: list[int]) -> list[RewindItem]:
    """Those of the items still pending, and the actions they undo, all locked in one
    statement (as ``undo_original`` locks one), in one order for every batch. Their rows
    only: the items' default order goes through their rewind, and locking the rewind's
    row too would make the asks of one rewind wait for each other (and a pause wait for
    them)."""
    return list(
        RewindItem.objects.select_for_update(of=("self", "action"), no_key=True)
        .select_related("action")
        .only(*_ITEM_FIELDS, *(f"action__{name}" for name in UNDO_FIELDS))
        .filter(pk__in=item_ids, state=ItemState.PENDING)
        .order_by("pk")
    )


def _ask(item_ids: list[int], tokens: dict[tuple[int, str], Any]) -> None:
    """Ask for these items' undos in one transaction with their moves (see header): each
    pending one's compensation decided, or its refusal recorded. A batch reads and
    writes its items and originals in three statements, whatever its size; each undo
    is its decision and its audited ask."""
    with transaction.atomic():
        items = _pending_items(item_ids)
        live = live_undos([item.action_id for item in items])
        for item in items:
            try:  # nothing written when refused: the refusal in the same transaction
                ask = undo_prepare(actor=RUNNER, original=item.action, tokens=tokens, live=live)
            except ValidationError as exc:
                item.state, item.outcome = ItemState.DONE, "refused"
                item.detail = " ".join(exc.messages)[:300]
                continue
            compensation = undo_decide(actor=RUNNER, ask=ask)
            item.compensation, item.state = compensation, ItemState.REQUESTED
            if compensation.status not in OPEN:  # denied or halted at once
                item.state = ItemState.DONE
                item.outcome = compensation.status[:20]
        if items:
            RewindItem.objects.bulk_update(items, ["state", "outcome", "detail", "compensation"])


def _ask_all(item_ids: list[int]) -> None:
    """Ask for these items' undos: each on a resource of its own, so in any order, in
    batches of ASK_BATCH. On PostgreSQL, outside a caller's transaction, ASK_THREADS
    batches at a time (an ask mostly waits for the database); otherwise one after
    another, in the caller's transaction if any."""
    if not item_ids:
        return
    tokens = undo_tokens(RewindItem.objects.filter(pk__in=item_ids).values("action_id"))
    batches = [item_ids[i : i + ASK_BATCH] for i in range(0, len(item_ids), ASK_BATCH)]
    threads = min(ASK_THREADS, len(batches))
    if threads < 2 or connection.vendor != "postgresql" or connection.in_atomic_block:
        for batch in batches:
            _ask(batch, tokens)
        return

    def ask(batch: list[int]) -> None:  # the tokens are shared: read before, committed
        try:
            _ask(batch, tokens)
        finally:
            connection.close()  # this thread's connection, back to the pool

    with ThreadPoolExecutor(threads, thread_name_prefix="rewind-ask") as pool:
        for future in [pool.submit(ask, batch) for batch in batches]:
            future.result()  # an error in one batch is the step's error, as in a loop


def _finish_ended(items: Any) -> int:
    """The asked-for undos that have ended: their outcome on their items, at once. An
    item whose compensation is gone (deleted with its agent's history) ends as "gone"."""
    ended = (
        items.filter(state=ItemState.REQUESTED)
        .exclude(compensation__status__in=OPEN)
        .values_list("pk", "compensation__compensation_outcome", "compensation__status")
    )
    by_outcome: dict[str, list[int]] = {}
    for pk, outcome, status in ended:
        by_outcome.setdefault((outcome or status or "gone")[:20], []).append(pk)
    finished = 0
    for outcome, pks in by_outcome.items():
        finished += items.filter(pk__in=pks, state=ItemState.REQUESTED).update(
            state=ItemState.DONE, outcome=outcome
        )
    return finished


def _step(rewind: Rewind, size: int) -> dict[str, int]:
    items = RewindItem.objects.filter(rewind=rewind)
    finished = _finish_ended(items)
    # Resources with an undo still on its way: their older actions wait.
    busy = set(items.filter(state=ItemState.REQUESTED).values_list("resource", flat=True))
    to_ask: list[int] = []
    if rewind.state == RewindState.RUNNING:
        # The newest pending ones: a step reads a bounded number of rows however long the
        # rewind. On each resource only the newest pending one may be asked for.
        pending = items.filter(state=ItemState.PENDING).order_by("position")
        for pk, resource in pending.values_list("pk", "resource")[: size * 5]:
            if resource in busy:
                continue
            busy.add(resource)
            if len(to_ask) < size:
                to_ask.append(pk)
    _ask_all(to_ask)
    asked = len(to_ask)
    _done_if_finished(rewind)
    on_their_way = items.filter(state=ItemState.REQUESTED).count()
    return {"asked": asked, "finished": finished, "on_their_way": on_their_way}


def _lease(rewind_id: int) -> bool:
    """Take (or renew) the rewind for this step: false when another step has it."""
    now = timezone.now()
    free = Rewind.objects.filter(
        Q(stepping_until__isnull=True) | Q(stepping_until__lt=now),
        pk=rewind_id,
        state__in=(RewindState.RUNNING, RewindState.PAUSED),
    )
    return bool(free.update(stepping_until=now + STEP_LEASE))


def rewind_step(*, rewind_id: int, size: int = STEP_SIZE, follow: float = 0) -> dict[str, int]:
    """The runner: record the undos that ended and ask for the next ones (a pass). With
    ``follow``, for up to that many seconds: again at once after a pass that moved the
    rewind on, and every FOLLOW_EVERY seconds while undos are on their way (their
    compensators report them); without, one pass.

    Safe to call from anywhere, any number of times: one step runs at a time per rewind
    and a second returns at once, so two never ask for two actions of one resource side
    by side. See tasks.py for who steps when."""
    if not _lease(rewind_id):
        return {"asked": 0, "finished": 0, "on_their_way": 0}
    asked = finished = 0
    until = time.monotonic() + follow
    try:
        while True:
            done = _step(Rewind.objects.get(pk=rewind_id), size)
            asked, finished = asked + done["asked"], finished + done["finished"]
            if time.monotonic() >= until:
                break
            if not (done["asked"] or done["finished"]):
                if not done["on_their_way"]:
                    break
                time.sleep(FOLLOW_EVERY)
            Rewind.objects.filter(pk=rewind_id).update(stepping_until=timezone.now() + STEP_LEASE)
    finally:
        Rewind.objects.filter(pk=rewind_id).update(stepping_until=None)
    return {"asked": asked, "finished": finished, "on_their_way": done["on_their_way"]}


def _done_if_finished(rewind: Rewind) -> None:
    with transaction.atomic():
        rewind = _locked(rewind)
        remaining = rewind.items.filter(state__in=(ItemState.PENDING, ItemState.REQUESTED))
        if rewind.state != RewindState.RUNNING or remaining.exists():
            return
        outcomes = Counter(rewind.items.values_list("outcome", flat=True))
        rewind.state, rewind.finished_at = RewindState.DONE, timezone.now()
        rewind.summary = {**rewind.summary, "outcomes": dict(outcomes)}
        rewind.save(update_fields=["state", "finished_at", "summary"])
        _audit(RUNNER, verbs.REWIND_DONE, rewind, outcomes=dict(outcomes))


def rewinds_step() -> dict[str, Any]:
    """The beat job: a step (one pass) of every running rewind, and of paused ones, whose
    asked-for undos still end; one that moved is followed by a job of its own."""
    live = Rewind.objects.filter(state__in=(RewindState.RUNNING, RewindState.PAUSED))
    steps = {}
    for pk in live.values_list("pk", flat=True):
        steps[str(pk)] = done = rewind_step(rewind_id=pk)
        if done["asked"] or done["finished"]:
            rewind_kick(pk)
    return steps
