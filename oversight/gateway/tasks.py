from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from oversight.gateway.constants import ActionStatus
from oversight.gateway.lifecycle import action_expire_if_due
from oversight.gateway.models import Action

logger = logging.getLogger(__name__)
BATCH = 500


@shared_task(name="oversight.gateway.tasks.expire_due_actions")
def expire_due_actions() -> int:
    """Held actions nobody decided in time become expired (a denial). Idempotent: each is
    claimed atomically, so a vote or a second run that gets there first wins."""
    due = Action.objects.filter(status=ActionStatus.PENDING, expires_at__lte=timezone.now())
    expired = 0
    for action in due.order_by("expires_at")[:BATCH]:
        if action_expire_if_due(action=action).status == ActionStatus.EXPIRED:
            expired += 1
    if expired:
        logger.info("expired %s held actions", expired)
    return expired
