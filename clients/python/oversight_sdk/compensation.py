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
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
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
