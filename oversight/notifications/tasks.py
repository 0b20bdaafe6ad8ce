"""Celery tasks: they take ids and call the delivery service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from oversight.notifications.constants import MAX_ATTEMPTS
from oversight.notifications.delivery import notification_deliver
from oversight.notifications.selectors import notifications_stale


@shared_task(
    bind=True,
    name="oversight.notifications.tasks.send_notification",
    # The row's attempt count is the real bound; this only stops a runaway loop.
    max_retries=MAX_ATTEMPTS,
)
def send_notification(self: Any, notification_id: int) -> str:
    """One attempt; on a failure that may pass, try again later with exponential backoff.

    Idempotent: a sent (or failed, or claimed) notification is skipped. With eager
    tasks and ``CELERY_TASK_EAGER_PROPAGATES`` on (the zero-install default), the
    first failure raises ``celery.exceptions.Retry`` to the caller and nothing retries
    inline; with propagation off, retries run inline at once, ignoring the countdown.
    """
    delivery = notification_deliver(notification_id=notification_id)
    if delivery.retry_in is not None:
        raise self.retry(countdown=delivery.retry_in)
    return delivery.state


@shared_task(name="oversight.notifications.tasks.requeue_stale_notifications")
def requeue_stale_notifications() -> int:
    """Queue again the sends that never reached a worker (broker down at commit)."""
    stale = notifications_stale()
    for notification_id in stale:
        send_notification.delay(notification_id)
    return len(stale)
