"""The bulk rewind's runner (bulk.py makes a rewind; its header says how it runs).

rewind_step      a beat job every few seconds, and after each change: asks for the
                 undo of the next items, newest first; on one resource strictly one
                 after the other (an older action's undo expects the state the newer
                 one's undo leaves); records each outcome
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from oversight.audit import verbs
from oversight.gateway.constants import ActionStatus
from oversight.rewind.bulk import RUNNER, audit_rewind, locked, rewind_kick
from oversight.rewind.models import ItemState, Rewind, RewindItem, RewindState
from oversight.rewind.services import (
    UNDO_FIELDS,
    live_undos,
    undo_decide,
    undo_prepare,
    undo_tokens,
)

STEP_SIZE = 200  # undos asked for per step at most
STEP_LEASE = dt.timedelta(seconds=30)  # a step that dies holds its rewind this long
ASK_BATCH = 10  # undos asked for in one transaction
ASK_THREADS = 3  # batches asked for at a time by a step (each undo on a resource of its own)
FOLLOW_EVERY = 0.2  # seconds between a following step's passes while nothing moved
ERROR = "error"  # an item whose undo could not be asked for: Oversight raised (logged)
OPEN = (ActionStatus.PENDING, ActionStatus.ALLOWED, ActionStatus.APPROVED)  # an undo on its way

logger = logging.getLogger(__name__)

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


class _ItemFailed(Exception):
    """Asking for one item's undo raised (``_ask``): the batch is rolled back."""

    def __init__(self, item_id: int, error: Exception) -> None:
        super().__init__(item_id, error)
        self.item_id, self.error = item_id, error


def _ask(item_ids: list[int], tokens: dict[tuple[int, str], Any]) -> None:
    """Ask for these items' undos in one transaction with their moves (see header): each
    pending one's compensation decided, or its refusal recorded. A batch reads and
    writes its items and originals in three statements, whatever its size; each undo
    is its decision and its audited ask.

    An item whose ask raises (a defect, or data its undo cannot be built from: not a
    refusal) is ended as ERROR on its own, and the batch asked again without it: where
    the error would otherwise fail every step of the rewind for ever, the rest of the
    rewind goes on, and its page says which undo was never asked for. The database's
    own errors (it is down, a connection broke) are the step's, tried again later."""
    while item_ids:
        try:
            _ask_batch(item_ids, tokens)
            return
        except _ItemFailed as failed:
            logger.error(
                "rewind item %s: asking for its undo raised",
                failed.item_id,
                exc_info=failed.error,
            )
            RewindItem.objects.filter(pk=failed.item_id, state=ItemState.PENDING).update(
                state=ItemState.DONE,
                outcome=ERROR,
                detail=f"{type(failed.error).__name__} (the server's log has the rest)",
            )
            item_ids = [pk for pk in item_ids if pk != failed.item_id]


def _ask_batch(item_ids: list[int], tokens: dict[tuple[int, str], Any]) -> None:
    with transaction.atomic():
        items = _pending_items(item_ids)
        live = live_undos([item.action_id for item in items])
        for item in items:
            try:  # nothing written when refused: the refusal in the same transaction
                compensation = _ask_one(item, tokens, live)
            except ValidationError as exc:
                item.state, item.outcome = ItemState.DONE, "refused"
                item.detail = " ".join(exc.messages)[:300]
                continue
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:
                raise _ItemFailed(item.pk, exc) from exc
            item.compensation, item.state = compensation, ItemState.REQUESTED
            if compensation.status not in OPEN:  # denied or halted at once
                item.state = ItemState.DONE
                item.outcome = compensation.status[:20]
        if items:
            RewindItem.objects.bulk_update(items, ["state", "outcome", "detail", "compensation"])


def _ask_one(item: RewindItem, tokens: dict[tuple[int, str], Any], live: Any) -> Any:
    ask = undo_prepare(actor=RUNNER, original=item.action, tokens=tokens, live=live)
    return undo_decide(actor=RUNNER, ask=ask)


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
        rewind = locked(rewind)
        remaining = rewind.items.filter(state__in=(ItemState.PENDING, ItemState.REQUESTED))
        if rewind.state != RewindState.RUNNING or remaining.exists():
            return
        outcomes = Counter(rewind.items.values_list("outcome", flat=True))
        rewind.state, rewind.finished_at = RewindState.DONE, timezone.now()
        rewind.summary = {**rewind.summary, "outcomes": dict(outcomes)}
        rewind.save(update_fields=["state", "finished_at", "summary"])
        audit_rewind(RUNNER, verbs.REWIND_DONE, rewind, outcomes=dict(outcomes))


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
