"""On PostgreSQL and Redis: a real Celery worker sends after commit and marks the row sent."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction

from oversight.celery import app as celery_app
from oversight.notifications.models import Notification, TeamChannels
from oversight.notifications.services import notify_action_held
from tests.notifications.conftest import hold, set_channels
from tests.notifications.receiver import Receiver
from tests.servers import celery_worker


@pytest.fixture
def _eager_tasks() -> Iterator[None]:
    """Not eager here: tasks go through Redis to the worker."""
    yield


def _wait_until(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_after_commit(
    team: Any, agent: Any, rita: Any, receiver: Receiver
) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    assert not celery_app.conf.task_always_eager
    set_channels(team, email=True, webhook_url=receiver.url)
    with celery_worker():
        # As the gateway does: the action and the call to tell people, in one transaction.
        with transaction.atomic():
            action = hold(agent)
            transaction.on_commit(partial(notify_action_held, action_id=action.pk), robust=True)
            assert not Notification.objects.exists()  # nothing before commit
        _wait_until(lambda: Notification.objects.filter(state="sent").count() == 2)
    rows = {n.channel: n for n in Notification.objects.all()}
    assert {(n.state, n.attempts) for n in rows.values()} == {("sent", 1)}
    assert rows["email"].recipient == "rita@example.com"
    (received,) = receiver.received
    secret = TeamChannels.objects.get(team=team).webhook_secret.encode()
    expected = "sha256=" + hmac.new(secret, received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, received.headers["X-Oversight-Signature"])
