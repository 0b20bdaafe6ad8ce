"""Jobs of rewind: the runner's steps."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from oversight.rewind import bulk, webhook


@shared_task(name="oversight.rewind.tasks.rewind_step_task")
def rewind_step_task(rewind_id: int) -> dict[str, int]:
    """A step of one rewind, right after it changed (idempotent)."""
    return bulk.rewind_step(rewind_id=rewind_id)


@shared_task(name="oversight.rewind.tasks.rewinds_step")
def rewinds_step() -> dict[str, Any]:
    """A step of every running rewind: asks for the next undos, records ended ones."""
    return bulk.rewinds_step()


@shared_task(name="oversight.rewind.tasks.compensations_by_webhook")
def compensations_by_webhook() -> dict[str, int]:
    """Runnable compensations of teams with a compensation webhook, sent to it."""
    return webhook.compensations_by_webhook()
