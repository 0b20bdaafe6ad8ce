"""The Celery app. Its beat schedule lives here, in one place, one comment per entry."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oversight.settings")

app = Celery("oversight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Held actions nobody decided in time become expired (denied) and leave every queue.
    # Reading an action expires it too; this catches the ones nobody reads.
    "gateway-expire-held-actions": {
        "task": "oversight.gateway.tasks.expire_due_actions",
        "schedule": 15.0,
    },
    # Walk the whole audit hash chain every night; a break is logged at ERROR
    # with the first bad sequence number so that on-call hears of it.
    "audit-verify-chain": {
        "task": "oversight.audit.tasks.audit_verify_chain",
        "schedule": crontab(hour=3, minute=17),
    },
    # Queue again notification sends that never reached a worker (the broker was down
    # when their change committed); sending is idempotent, so a duplicate is harmless.
    "notifications-requeue-stale": {
        "task": "oversight.notifications.tasks.requeue_stale_notifications",
        "schedule": crontab(minute="*/5"),
    },
}
