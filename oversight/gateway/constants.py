"""Action lifecycle states and API limits."""

from __future__ import annotations

from django.db import models


class ActionStatus(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    DENIED = "denied", "Denied"
    HALTED = "halted", "Halted by a kill switch"
    DRY_RUN = "dry_run", "Dry run (staging)"
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Denied by a reviewer"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"


# States from which the agent may run the action and report its outcome.
RUNNABLE = frozenset({ActionStatus.ALLOWED, ActionStatus.APPROVED})
# States that will not change any more without a person (or a later rollback).
FINAL = frozenset(
    {
        ActionStatus.DENIED,
        ActionStatus.HALTED,
        ActionStatus.DRY_RUN,
        ActionStatus.REJECTED,
        ActionStatus.EXPIRED,
        ActionStatus.CANCELLED,
        ActionStatus.SUCCEEDED,
        ActionStatus.FAILED,
        ActionStatus.ROLLED_BACK,
    }
)

# How far along its lifecycle a status is; a status only ever moves to a higher rank:
# held, then runnable (approved), then final; rolled back only after it ran. Live pages
# use it to keep the newest of an action's updates when two processes' messages cross
# (oversight/live/rows.py).
LIFECYCLE_RANK: dict[str, int] = {
    ActionStatus.PENDING: 0,
    **dict.fromkeys(RUNNABLE, 1),
    **dict.fromkeys(FINAL, 2),
    ActionStatus.ROLLED_BACK: 3,
}

MAX_BODY_BYTES = 256 * 1024
MAX_WAIT_SECONDS = 60

# The why of an action its agent withdrew (Action.error, lifecycle.action_cancel).
BY_THE_AGENT = "cancelled by the agent"
