"""Periodic jobs of the approvals app (scheduled in oversight/celery.py)."""

from __future__ import annotations

import logging

from celery import shared_task

from oversight.approvals.escalation import actions_escalate_due

logger = logging.getLogger(__name__)


@shared_task(name="oversight.approvals.tasks.escalate_held_actions")
def escalate_held_actions() -> int:
    """Escalate held actions nobody eligible can decide or nobody answered by half their
    time. Idempotent: each action is escalated once, whoever runs first."""
    escalated = actions_escalate_due()
    if escalated:
        logger.info("escalated %s held actions to the admins", escalated)
    return escalated
