from __future__ import annotations

import logging

from celery import shared_task

from oversight.audit.verification import audit_chain_verify

logger = logging.getLogger(__name__)


@shared_task(name="oversight.audit.tasks.audit_verify_chain")
def audit_verify_chain() -> dict[str, object]:
    checked, found = audit_chain_verify()
    if found:
        logger.error("Audit chain broken at seq %s: %s", found.seq, found.reason)
        return {"ok": False, "checked": checked, "seq": found.seq, "reason": found.reason}
    logger.info("Audit chain intact: %s events", checked)
    return {"ok": True, "checked": checked}
