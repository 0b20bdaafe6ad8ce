from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from oversight.audit import checkpoints, sinks
from oversight.audit.trust_services import verification_execute, verification_run_here
from oversight.notifications.constants import MAX_ATTEMPTS

logger = logging.getLogger(__name__)


@shared_task(name="oversight.audit.tasks.audit_verify_chain")
def audit_verify_chain() -> dict[str, object]:
    """The nightly walk: the same verification as the audit page's button, recorded as a
    run the page shows (started by system:nightly)."""
    run = verification_run_here(started_by="system:nightly")
    if run is None:
        logger.info("Audit verification skipped: another run is going")
        return {"ok": None, "skipped": "another verification is running"}
    if run.state != run.State.PASSED:
        logger.error("Audit chain broken at seq %s: %s", run.first_bad_seq, run.message)
        return {
            "ok": False,
            "checked": run.checked,
            "seq": run.first_bad_seq,
            "reason": run.message,
        }
    logger.info("Audit chain intact: %s events", run.checked)
    return {"ok": True, "checked": run.checked}


@shared_task(name="oversight.audit.tasks.audit_verification_run")
def audit_verification_run(run_id: int) -> str:
    """A run started from the audit page (trust_services.verification_start)."""
    return verification_execute(run_id=run_id).state


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
