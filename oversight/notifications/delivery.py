"""Sending one notification: claim it, send it, record what happened.

No transaction is held open across the network: the claim is a conditional update
(nothing updated means the row is sent, failed, or another worker holds it), the send
happens outside any transaction, and the outcome is another update.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.mail import get_connection, send_mail
from django.utils import timezone

from oversight.lib.claims import claim_attempt
from oversight.notifications import content
from oversight.notifications.constants import (
    BACKOFF_BASE_SECONDS,
    CLAIM_SECONDS,
    EMAIL_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Channel,
    State,
)
from oversight.notifications.models import Notification, TeamChannels
from oversight.notifications.signing import signature_header
from oversight.notifications.webhook_http import webhook_post

logger = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """Retrying cannot help (the webhook was removed, its URL is refused)."""


@dataclass(frozen=True)
class Delivery:
    """``state``: sent, failed, pending (``retry_in`` seconds from now) or skipped."""

    state: str
    retry_in: int | None = None


SKIPPED = "skipped"


def retry_countdown(attempts: int) -> int:
    """Seconds to wait after the ``attempts``-th failed try: 15, 30, 60, 120."""
    return BACKOFF_BASE_SECONDS * 2 ** (attempts - 1)


def _claim(notification_id: int) -> bool:
    return claim_attempt(
        Notification,
        notification_id,
        pending=State.PENDING,
        max_attempts=MAX_ATTEMPTS,
        seconds=CLAIM_SECONDS,
    )


def _send_email(notification: Notification) -> None:
    subject, body = content.render_email(notification.payload)
    connection = get_connection(timeout=EMAIL_TIMEOUT_SECONDS)
    send_mail(subject, body, None, [notification.recipient], connection=connection)


def _send_webhook(notification: Notification) -> None:
    # The team's URL and secret as they are now: a regenerated secret signs from then on.
    channels = TeamChannels.objects.filter(team_id=notification.team_id).first()
    if channels is None or not channels.webhook_url:
        raise PermanentFailure("The team's webhook was removed.")
    timestamp = int(time.time())
    body = content.webhook_body(
        notification.payload, notification_id=notification.pk, timestamp=timestamp
    )
    try:
        response = webhook_post(
            channels.webhook_url,
            body=body,  # the exact bytes signed
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Oversight-Webhook/1",
                SIGNATURE_HEADER: signature_header(body, channels.webhook_secret),
                TIMESTAMP_HEADER: str(timestamp),
            },
        )
    except ValidationError as exc:
        raise PermanentFailure(" ".join(exc.messages)) from None
    if not response.is_success:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")


def _fail(notification: Notification, error: str, *, permanent: bool) -> Delivery:
    still_pending = Notification.objects.filter(pk=notification.pk, state=State.PENDING)
    if permanent or notification.attempts >= MAX_ATTEMPTS:
        still_pending.update(state=State.FAILED, last_error=error, claimed_until=None)
        logger.warning("notification %s failed for good: %s", notification.pk, error)
        return Delivery(State.FAILED)
    still_pending.update(last_error=error, claimed_until=None)
    return Delivery(State.PENDING, retry_in=retry_countdown(notification.attempts))


def notification_deliver(*, notification_id: int) -> Delivery:
    """One attempt at sending; safe to call any number of times for the same row."""
    if not _claim(notification_id):
        return Delivery(SKIPPED)  # sent, failed, gone, or being sent by someone else
    notification = Notification.objects.get(pk=notification_id)
    try:
        if notification.channel == Channel.EMAIL:
            _send_email(notification)
        else:
            _send_webhook(notification)
    except PermanentFailure as exc:
        return _fail(notification, str(exc), permanent=True)
    except Exception as exc:  # a failed send is recorded and retried, never lost
        logger.info("notification %s attempt %s: %r", notification.pk, notification.attempts, exc)
        return _fail(notification, f"{type(exc).__name__}: {exc}"[:2000], permanent=False)
    Notification.objects.filter(pk=notification.pk, state=State.PENDING).update(
        state=State.SENT, sent_at=timezone.now(), claimed_until=None, last_error=""
    )
    return Delivery(State.SENT)
