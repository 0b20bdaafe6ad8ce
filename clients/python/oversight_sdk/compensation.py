"""Compensators: how an agent undoes what it did, when a person asks Oversight to.

Register one per original action, with a function that reads the resource's current
state and one that undoes::

    @client.compensator("payments.refund", read=lambda task: ledger.refunded(task.resource))
    def charge_back(task):
        ledger.charge(task.params["charge"], task.params["amount"])
        return ledger.refunded(task.resource)      # the state it left

    client.run_compensators()                      # long-polls; Ctrl-C to stop

For each compensation Oversight hands over, the worker reads the state first. When it is
not what the original action left (``task.original.after``) it reports ``conflict`` and
changes nothing; otherwise it undoes and reports ``undone`` with the state it left (the
original is shown as rolled back only when that is the state it had before). A compensator
that raises reports ``failed``; an action with no compensator, ``skipped``.

The worker reports each outcome as soon as it has it, from a reporter beside it
(``Reports``): one request at a time, carrying every outcome that came while the last
one was on its way. A slow worker reports one at a time; a fast one, many in a request
(``report_compensations``), and a worker that dies leaves at most those unreported.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OriginalAction:
    id: str
    action: str
    resource: str
    params: dict[str, Any]
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class CompensationTask:
    """One undo to run: the undo action, its params, and the action it undoes."""

    id: str
    action: str
    resource: str
    params: dict[str, Any]
    original: OriginalAction

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompensationTask:
        original = data["original"]
        return cls(
            id=str(data["id"]),
            action=data["action"],
            resource=data["resource"],
            params=dict(data.get("params") or {}),
            original=OriginalAction(
                id=str(original["id"]),
                action=original["action"],
                resource=original["resource"],
                params=dict(original.get("params") or {}),
                before=original.get("before"),
                after=original.get("after"),
            ),
        )


@dataclass(frozen=True)
class CompensationOutcome:
    """What the worker reported for one task."""

    task: CompensationTask
    outcome: str  # undone, conflict, not_reversible, failed, skipped
    found: Any = None
    left: Any = None
    detail: str = ""
    original_status: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "found": self.found,
            "left": self.left,
            "detail": self.detail[:5000],
        }


class NotReversible(Exception):
    """Raise from an undo function when this one cannot be undone after all."""


@dataclass
class Compensators:
    """The registered compensators, by the original action's name."""

    by_action: dict[str, tuple[Callable[[CompensationTask], Any], Callable[..., Any]]] = field(
        default_factory=dict
    )

    def register(
        self, action: str, read: Callable[[CompensationTask], Any]
    ) -> Callable[[Callable[[CompensationTask], Any]], Callable[[CompensationTask], Any]]:
        if not action or not callable(read):
            raise ValueError("a compensator needs the original action's name and a read function")

        def decorator(undo: Callable[[CompensationTask], Any]) -> Callable[..., Any]:
            self.by_action[action] = (read, undo)
            return undo

        return decorator

    def run(self, task: CompensationTask) -> CompensationOutcome:
        """Read, compare with the recorded after-state, undo: one implementation for the
        sync and async clients."""
        entry = self.by_action.get(task.original.action)
        if entry is None:
            detail = f"no compensator registered for {task.original.action}"
            return CompensationOutcome(task, "skipped", detail=detail)
        read, undo = entry
        try:
            found = read(task)
        except Exception as exc:
            return CompensationOutcome(task, "failed", detail=f"reading the state: {exc}")
        if found != task.original.after:
            detail = "the state is not what the action left; nothing was changed"
            return CompensationOutcome(task, "conflict", found=found, detail=detail)
        try:
            left = undo(task)
        except NotReversible as exc:
            return CompensationOutcome(task, "not_reversible", found=found, detail=str(exc))
        except Exception as exc:
            logger.exception("compensation %s failed", task.id)
            return CompensationOutcome(task, "failed", found=found, detail=str(exc))
        return CompensationOutcome(task, "undone", found=found, left=left)


def task_path(task_id: str | uuid.UUID) -> str:
    return f"/compensations/{task_id}/result"


RESULTS_PATH = "/compensations/results"  # a batch of reports, at most MAX_BATCH
MAX_BATCH = 100


def results_body(outcomes: list[CompensationOutcome]) -> dict[str, Any]:
    return {"results": [{"id": o.task.id, **o.body()} for o in outcomes]}


def reported(
    outcomes: list[CompensationOutcome], data: dict[str, Any]
) -> list[CompensationOutcome]:
    """The outcomes Oversight took, with their originals' status; one it did not take
    (taken by another worker meanwhile, or already reported) is logged and left out."""
    answers = {str(item["id"]): item for item in data["results"]}
    taken = []
    for outcome in outcomes:
        answer = answers.get(outcome.task.id) or {"error": {"message": "no answer"}}
        if answer.get("error"):
            logger.warning(
                "compensation %s not reported: %s", outcome.task.id, answer["error"]["message"]
            )
            continue
        taken.append(replace(outcome, original_status=answer.get("original_status", "")))
    return taken


Send = Callable[[list[CompensationOutcome]], list[CompensationOutcome]]
AsyncSend = Callable[[list[CompensationOutcome]], Awaitable[list[CompensationOutcome]]]
_END = None  # put by the worker when it stops: send what waits, then end


def _drained(first: CompensationOutcome | None, more: Callable[[], Any]) -> tuple[list[Any], bool]:
    """``first`` and whatever else waits (``more`` raises when nothing does); whether the
    worker has stopped."""
    batch = [first]
    while True:
        try:
            batch.append(more())
        except (queue.Empty, asyncio.QueueEmpty):
            break
    return [o for o in batch if o is not _END], _END in batch


class Reports:
    """The synchronous worker's reporter: a thread that sends the outcomes put to it, all
    that waited in one request (see the module's header); ``taken`` is what Oversight
    took. Leaving the ``with`` block sends what waits first."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._queue: queue.SimpleQueue[CompensationOutcome | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="oversight-reports", daemon=True)
        self.taken: list[CompensationOutcome] = []

    def __enter__(self) -> Reports:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._queue.put(_END)
        self._thread.join()

    def put(self, outcome: CompensationOutcome) -> None:
        self._queue.put(outcome)

    def _run(self) -> None:
        ended = False
        while not ended:
            batch, ended = _drained(self._queue.get(), self._queue.get_nowait)
            if batch:
                try:
                    self.taken += self._send(batch)
                except Exception:  # never lose the thread: the leases run out, then a retry
                    logger.exception("%d compensation outcomes not reported", len(batch))


class AsyncReports:
    """As ``Reports``, a task of the event loop; the worker lets it run between tasks."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send
        self._queue: asyncio.Queue[CompensationOutcome | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.taken: list[CompensationOutcome] = []

    async def __aenter__(self) -> AsyncReports:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._queue.put_nowait(_END)
        assert self._task is not None
        await self._task

    def put(self, outcome: CompensationOutcome) -> None:
        self._queue.put_nowait(outcome)

    async def _run(self) -> None:
        ended = False
        while not ended:
            batch, ended = _drained(await self._queue.get(), self._queue.get_nowait)
            if batch:
                try:
                    self.taken += await self._send(batch)
                except Exception:
                    logger.exception("%d compensation outcomes not reported", len(batch))
