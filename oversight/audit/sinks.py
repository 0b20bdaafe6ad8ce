"""Delivering checkpoints outside the database: a directory, a signed webhook, email.

Like notifications (notifications/delivery.py): claim the row with a conditional update,
send outside any transaction, record the outcome; a failed send is retried with backoff
up to MAX_ATTEMPTS. A directory never overwrites a checkpoint file with other content.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db.models import Q
from django.utils import timezone

from oversight.audit.models import CheckpointDelivery, SinkState
from oversight.lib.claims import claim_attempt
from oversight.notifications.constants import (
    CLAIM_SECONDS,
    EMAIL_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)
from oversight.notifications.delivery import retry_countdown
from oversight.notifications.signing import signature_header
from oversight.notifications.webhook_http import webhook_post

logger = logging.getLogger(__name__)
SINK_KINDS = ("dir", "webhook", "email")


class SinkError(Exception):
    """A send that failed; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def sink_parse(sink: str) -> tuple[str, str]:
    kind, _, target = sink.partition(":")
    if kind not in SINK_KINDS or not target:
        raise SinkError(
            f"unknown checkpoint sink {sink!r}: use dir:PATH, webhook:URL or email:ADDRESS",
            permanent=True,
        )
    return kind, target


def file_name(number: int) -> str:
    return f"checkpoint-{number:010d}.json"


def _to_directory(path: str, number: int, document: str) -> None:
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name(number)
    body = document + "\n"
    if target.exists():
        if target.read_text("utf-8") == body:
            return  # delivered before (a retry after a lost acknowledgement)
        raise SinkError(
            f"{target} exists with other content; it is never overwritten", permanent=True
        )
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".checkpoint-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, target)  # fails if another writer got there first
    finally:
        os.unlink(tmp)


def _to_webhook(url: str, number: int, document: str) -> None:
    secret = settings.AUDIT_CHECKPOINT_WEBHOOK_SECRET
    if not secret:
        raise SinkError("AUDIT_CHECKPOINT_WEBHOOK_SECRET is not set", permanent=True)
    body = document.encode("utf-8")
    try:
        response = webhook_post(
            url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Oversight-Checkpoint/1",
                "X-Oversight-Checkpoint": str(number),
                SIGNATURE_HEADER: signature_header(body, secret),
                TIMESTAMP_HEADER: str(int(time.time())),
            },
        )
    except ValidationError as exc:
        raise SinkError(" ".join(exc.messages), permanent=True) from None
    if not response.is_success:
        raise SinkError(f"HTTP {response.status_code}: {response.text[:200]}")


def _to_email(address: str, number: int, document: str) -> None:
    statement = json.loads(document)["checkpoint"]
    message = EmailMessage(
        subject=f"[Oversight] audit checkpoint #{number} of {statement['log']}",
        body=(
            f"Audit checkpoint #{number}: {statement['tree_size']} events, chain head "
            f"{statement['head']}, Merkle root {statement['root']}, at {statement['time']}.\n\n"
            "Keep the attached file: it is signed, and `audit_verify --checkpoints` checks "
            "the log against it.\n"
        ),
        to=[address],
        connection=get_connection(timeout=EMAIL_TIMEOUT_SECONDS),
    )
    message.attach(file_name(number), document + "\n", "application/json")
    message.send()


_SENDERS = {"dir": _to_directory, "webhook": _to_webhook, "email": _to_email}


def _claim(delivery_id: int) -> bool:
    return claim_attempt(
        CheckpointDelivery,
        delivery_id,
        pending=SinkState.PENDING,
        max_attempts=MAX_ATTEMPTS,
        seconds=CLAIM_SECONDS,
    )


def checkpoint_deliver(*, delivery_id: int) -> int | None:
    """One attempt; returns seconds until the next try, or None when there is none
    (delivered, failed for good, or not this caller's to send)."""
    if not _claim(delivery_id):
        return None
    delivery = CheckpointDelivery.objects.select_related("checkpoint").get(pk=delivery_id)
    pending = CheckpointDelivery.objects.filter(pk=delivery_id, state=SinkState.PENDING)
    checkpoint = delivery.checkpoint
    try:
        kind, target = sink_parse(delivery.sink)
        _SENDERS[kind](target, checkpoint.number, checkpoint.document)
    except Exception as exc:  # recorded and retried, never lost
        error = f"{type(exc).__name__}: {exc}"[:2000]
        permanent = isinstance(exc, SinkError) and exc.permanent
        if permanent or delivery.attempts >= MAX_ATTEMPTS:
            pending.update(state=SinkState.FAILED, last_error=error, claimed_until=None)
            logger.error("checkpoint #%s to %s failed: %s", checkpoint.number, delivery.sink, error)
            return None
        pending.update(last_error=error, claimed_until=None)
        logger.warning("checkpoint #%s to %s: %s", checkpoint.number, delivery.sink, error)
        return retry_countdown(delivery.attempts)
    pending.update(
        state=SinkState.DELIVERED, delivered_at=timezone.now(), claimed_until=None, last_error=""
    )
    return None


def deliveries_stale() -> list[int]:
    """Pending deliveries nobody holds (queued while the broker was down, or whose
    retry was lost): the beat job queues them again."""
    now = timezone.now()
    return list(
        CheckpointDelivery.objects.filter(state=SinkState.PENDING, attempts__lt=MAX_ATTEMPTS)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .values_list("pk", flat=True)[:500]
    )
