"""The send task: signed webhooks, retries with backoff, failure, and sending only once.

Webhooks go to a real HTTP server on 127.0.0.1 (tests/notifications/receiver.py); nothing
of ours is mocked. Tasks run eagerly (see conftest): with the project's
CELERY_TASK_EAGER_PROPAGATES on, a retry is raised to the caller; the
``inline_retries`` fixture turns propagation off so retries run inline, at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from oversight.notifications.delivery import retry_countdown
from oversight.notifications.models import Notification, TeamChannels
from oversight.notifications.tasks import requeue_stale_notifications, send_notification
from tests.notifications.conftest import hold, queued, set_channels
from tests.notifications.receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def email(
    team: Any, held_action: Any, rita: Any, django_capture_on_commit_callbacks: Any
) -> Notification:
    set_channels(team, email=True)
    (notification,) = queued(held_action, django_capture_on_commit_callbacks)
    return notification


def _fresh(notification: Notification) -> Notification:
    return Notification.objects.get(pk=notification.pk)


def test_the_webhook_signature_verifies_over_the_exact_body(
    team: Any, webhook: Notification, receiver: Receiver
) -> None:
    assert send_notification.delay(webhook.pk).get() == "sent"
    (received,) = receiver.received
    secret = TeamChannels.objects.get(team=team).webhook_secret.encode()
    expected = "sha256=" + hmac.new(secret, received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, received.headers["X-Oversight-Signature"])
    tampered = received.body.replace(b"stripe", b"strife")
    forged = "sha256=" + hmac.new(secret, tampered, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(forged, received.headers["X-Oversight-Signature"])


def test_the_body_is_slack_compatible_with_the_event_and_a_signed_timestamp(
    webhook: Notification, receiver: Receiver, held_action: Any
) -> None:
    send_notification.delay(webhook.pk)
    (received,) = receiver.received
    assert received.headers["Content-Type"] == "application/json"
    body = json.loads(received.body)
    assert body["text"] == "Approval needed: payments.refund on stripe:charge/ch_1 by Refund bot"
    assert body["blocks"][0]["type"] == "section"
    link = f"<http://127.0.0.1:8000/actions/{held_action.pk}/|Review it>"
    assert link in body["blocks"][0]["text"]["text"]
    event = body["oversight"]
    assert event["event"] == "action.held"
    assert event["notification_id"] == webhook.pk
    assert str(event["timestamp"]) == received.headers["X-Oversight-Timestamp"]
    assert event["action"]["expires_at"] == held_action.expires_at.isoformat()


def test_agent_text_cannot_ping_the_channel(
    team: Any, agent: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, webhook_url=receiver.url)
    action = hold(agent, resource="<!channel> look", reason="<https://evil.example|click>")
    (notification,) = queued(action, django_capture_on_commit_callbacks)
    send_notification.delay(notification.pk)
    body = json.loads(receiver.received[0].body)
    slack_text = body["text"] + body["blocks"][0]["text"]["text"]
    assert "<!channel>" not in slack_text
    assert "&lt;!channel&gt;" in slack_text
    assert "<https://evil" not in slack_text


def test_a_receiver_failing_twice_is_sent_on_the_third_attempt(
    inline_retries: None, webhook: Notification, receiver: Receiver
) -> None:
    receiver.statuses[:] = [500, 503]
    assert send_notification.delay(webhook.pk).get() == "sent"
    sent = _fresh(webhook)
    assert (sent.state, sent.attempts, sent.last_error) == ("sent", 3, "")
    assert sent.sent_at is not None
    ids = {json.loads(r.body)["oversight"]["notification_id"] for r in receiver.received}
    assert len(receiver.received) == 3
    assert ids == {webhook.pk}  # receivers can tell a retry from a new message


def test_after_five_failed_attempts_it_is_failed_with_the_last_error(
    inline_retries: None, webhook: Notification, receiver: Receiver
) -> None:
    receiver.statuses[:] = [500] * 9
    send_notification.delay(webhook.pk)
    failed = _fresh(webhook)
    assert (failed.state, failed.attempts) == ("failed", 5)
    assert failed.last_error == "RuntimeError: HTTP 500: ok"
    assert len(receiver.received) == 5
    assert send_notification.delay(webhook.pk).get() == "skipped"  # never a sixth


def test_a_network_error_is_retried_like_a_bad_status(
    inline_retries: None, team: Any, held_action: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver() as gone:
        url = gone.url  # the port is closed once the receiver has stopped
    set_channels(team, webhook_url=url)
    (notification,) = queued(held_action, django_capture_on_commit_callbacks)
    send_notification.delay(notification.pk)
    failed = _fresh(notification)
    assert (failed.state, failed.attempts) == ("failed", 5)
    assert failed.last_error.startswith("ConnectError")


def test_with_propagation_on_a_failure_raises_retry_with_the_backoff(
    webhook: Notification, receiver: Receiver
) -> None:
    receiver.statuses[:] = [502]
    with pytest.raises(Retry) as raised:
        send_notification.delay(webhook.pk)
    assert raised.value.when == 15
    waiting = _fresh(webhook)
    assert (waiting.state, waiting.attempts) == ("pending", 1)
    assert waiting.last_error == "RuntimeError: HTTP 502: ok"
    assert waiting.claimed_until is None  # free for the retry to claim


def test_the_backoff_doubles() -> None:
    assert [retry_countdown(n) for n in (1, 2, 3, 4)] == [15, 30, 60, 120]


def test_calling_the_task_twice_sends_once(email: Notification, mailoutbox: list) -> None:
    assert send_notification.delay(email.pk).get() == "sent"
    assert send_notification.delay(email.pk).get() == "skipped"
    assert len(mailoutbox) == 1
    assert _fresh(email).attempts == 1


def test_a_row_another_worker_holds_is_left_alone(email: Notification, mailoutbox: list) -> None:
    Notification.objects.filter(pk=email.pk).update(
        claimed_until=timezone.now() + dt.timedelta(seconds=60)
    )
    assert send_notification.delay(email.pk).get() == "skipped"
    assert mailoutbox == []


def test_a_row_whose_worker_died_is_taken_up_again(email: Notification, mailoutbox: list) -> None:
    Notification.objects.filter(pk=email.pk).update(
        claimed_until=timezone.now() - dt.timedelta(seconds=1), attempts=1
    )
    assert send_notification.delay(email.pk).get() == "sent"
    assert _fresh(email).attempts == 2


def test_an_unknown_notification_is_skipped() -> None:
    assert send_notification.delay(987654).get() == "skipped"


def test_http_to_a_public_host_is_refused_at_send_time(team: Any, webhook: Notification) -> None:
    # As if saved on a DEBUG install, then run in production: never sent in the clear.
    TeamChannels.objects.filter(team=team).update(webhook_url="http://hooks.example.com/x")
    assert send_notification.delay(webhook.pk).get() == "failed"
    failed = _fresh(webhook)
    assert failed.attempts == 1
    assert "https" in failed.last_error


def test_a_removed_webhook_fails_at_once(team: Any, webhook: Notification) -> None:
    set_channels(team, webhook_url="")
    assert send_notification.delay(webhook.pk).get() == "failed"
    assert _fresh(webhook).last_error == "The team's webhook was removed."


def test_the_current_secret_signs(team: Any, webhook: Notification, receiver: Receiver) -> None:
    TeamChannels.objects.filter(team=team).update(webhook_secret="rotated")
    send_notification.delay(webhook.pk)
    received = receiver.received[0]
    expected = "sha256=" + hmac.new(b"rotated", received.body, hashlib.sha256).hexdigest()
    assert received.headers["X-Oversight-Signature"] == expected


def test_lost_sends_are_queued_again_by_the_sweep(
    email: Notification,
    mailoutbox: list,
    team: Any,
    agent: Any,
    rita: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    Notification.objects.filter(pk=email.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=20)
    )
    (recent,) = queued(hold(agent), django_capture_on_commit_callbacks)
    assert requeue_stale_notifications.delay().get() == 1
    assert _fresh(email).state == "sent"
    assert _fresh(recent).state == "pending"  # its own task may still be on the way
    assert len(mailoutbox) == 1
