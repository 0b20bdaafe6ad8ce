from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from oversight.audit import checkpoints, sinks
from oversight.audit.verification import audit_chain_verify
from oversight.notifications.constants import MAX_ATTEMPTS

logger = logging.getLogger(__name__)


@shared_task(name="oversight.audit.tasks.audit_verify_chain")
def audit_verify_chain() -> dict[str, object]:
    checked, found = audit_chain_verify()
    if found:
        logger.error("Audit chain broken at seq %s: %s", found.seq, found.reason)
        return {"ok": False, "checked": checked, "seq": found.seq, "reason": found.reason}
    logger.info("Audit chain intact: %s events", checked)
    return {"ok": True, "checked": checked}


@shared_task(bind=True, name="oversight.audit.tasks.checkpoint_deliver", max_retries=MAX_ATTEMPTS)
def checkpoint_deliver(self: Any, delivery_id: int) -> None:
    """One attempt at sending a checkpoint to one sink; retried with backoff."""
    retry_in = sinks.checkpoint_deliver(delivery_id=delivery_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name="oversight.audit.tasks.audit_checkpoint")
def audit_checkpoint() -> dict[str, object]:
    """Write a checkpoint when one is due, and queue again deliveries nobody holds."""
    for delivery_id in sinks.deliveries_stale():
        checkpoint_deliver.delay(delivery_id)
    try:
        checkpoint = checkpoints.checkpoint_if_due()
    except checkpoints.CheckpointRefused as exc:
        return {"written": False, "refused": str(exc)}
    if checkpoint is None:
        return {"written": False}
    return {"written": True, "number": checkpoint.number, "tree_size": checkpoint.tree_size}
