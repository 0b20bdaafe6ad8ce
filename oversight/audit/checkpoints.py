"""Writing checkpoints: signed statements of the log's state, sent outside the database.

A checkpoint is written only over a log that still agrees with the previous one (the
same chain head and Merkle root at its size) and whose new events chain on from it, so
Oversight never signs a history that was rewritten under it. See docs/audit-trust.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from oversight.audit import merkle, signing, verifier
from oversight.audit.models import (
    AuditCheckpoint,
    AuditEvent,
    CheckpointDelivery,
    stored_row_checked,
)

logger = logging.getLogger(__name__)

# Serializes checkpoint writers (PostgreSQL; SQLite's write lock does it there).
CHECKPOINT_LOCK_KEY = 679192


# Why the last checkpoint was refused, and when, until one is written (the audit page
# says so: a refusal is the log's own alarm, not a job that stopped running).
REFUSED_KEY = "audit:checkpoint-refused"


def _remember_refusal(refusal: dict[str, str] | None) -> None:
    """Keep (or, with None, forget) the last refusal for the audit page. Only what the
    page says depends on it: a cache that cannot be reached never stops a checkpoint."""
    try:
        if refusal is None:
            cache.delete(REFUSED_KEY)
        else:
            cache.set(REFUSED_KEY, refusal, None)
    except Exception:  # the cache's own errors, whatever its backend
        logger.warning("could not keep the checkpoint refusal for the audit page", exc_info=True)


class CheckpointRefused(Exception):
    """The log no longer agrees with the last checkpoint: nothing is signed."""


@dataclass(frozen=True)
class Due:
    new_events: int
    last_at: dt.datetime | None

    def due(self, now: dt.datetime) -> bool:
        if self.new_events <= 0:
            return False
        if self.new_events >= settings.AUDIT_CHECKPOINT_EVERY_EVENTS or self.last_at is None:
            return True
        return (now - self.last_at).total_seconds() >= settings.AUDIT_CHECKPOINT_MAX_AGE_SECONDS


def checkpoint_due() -> Due:
    last = AuditCheckpoint.objects.order_by("-number").values("tree_size", "created_at").first()
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    size = last["tree_size"] if last else 0
    return Due(new_events=head - size, last_at=last["created_at"] if last else None)


def _check_new_events(start: int, stop: int, prev_hash: str) -> list[str]:
    """The hashes of events (start, stop], each checked against its content and its
    predecessor: a checkpoint vouches only for events that chain on from the last."""
    walk = verifier.ChainWalk()
    walk.expected_seq, walk.prev_hash = start + 1, prev_hash
    hashes = []
    rows = AuditEvent.objects.filter(seq__gt=start, seq__lte=stop).order_by("seq").as_stored()
    for row in rows.iterator(chunk_size=2000):
        if not walk.add(*stored_row_checked(row)):
            break
        hashes.append(row["hash"])
    if walk.first is None and walk.expected_seq != stop + 1:
        walk.first = verifier.ChainBreak(walk.expected_seq, "the event is missing")
    if walk.first is not None:
        raise CheckpointRefused(f"seq {walk.first.seq}: {walk.first.reason}")
    return hashes


def _agrees_with(last: AuditCheckpoint, tree: merkle.Tree) -> None:
    head = AuditEvent.objects.filter(seq=last.tree_size).values_list("hash", flat=True).first()
    if head != last.head:
        raise CheckpointRefused(
            f"event {last.tree_size} is not the head checkpoint #{last.number} signed"
        )
    try:
        root = tree.root(last.tree_size)
    except merkle.TreeError as exc:
        raise CheckpointRefused(str(exc)) from None
    if root.hex() != last.root:
        raise CheckpointRefused(f"the tree no longer has checkpoint #{last.number}'s root")


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHECKPOINT_LOCK_KEY])


@transaction.atomic
def checkpoint_write() -> AuditCheckpoint | None:
    """Sign the log's current state and queue it to every sink; None when no event is
    new since the last checkpoint. Raises CheckpointRefused (and logs it at ERROR) when
    the log contradicts the last checkpoint."""
    _lock()
    last = AuditCheckpoint.objects.order_by("-number").first()
    newest = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    start = last.tree_size if last else 0
    if newest == start:
        return None
    # At most AUDIT_CHECKPOINT_MAX_EVENTS new events per checkpoint: a log that grew
    # faster (or a first checkpoint of a long log) catches up over several, each with a
    # document and a transaction of bounded size.
    size = min(newest, start + settings.AUDIT_CHECKPOINT_MAX_EVENTS) if newest > start else newest
    head = AuditEvent.objects.filter(seq=size).values("seq", "hash").first()
    tree = merkle.Tree()
    try:
        if last is not None:
            if size < start:
                raise CheckpointRefused(
                    f"the log has {size} events, fewer than checkpoint #{last.number}'s "
                    f"{last.tree_size}: events were deleted"
                )
            _agrees_with(last, tree)
        hashes = _check_new_events(start, size, last.head if last else verifier.GENESIS_HASH)
    except CheckpointRefused as exc:
        logger.error("Audit checkpoint refused: %s", exc)
        _remember_refusal({"at": timezone.now().isoformat(), "why": str(exc)})
        raise
    _remember_refusal(None)
    merkle.tree_extend(size)
    statement = {
        "format": verifier.CHECKPOINT_FORMAT,
        "log": settings.AUDIT_LOG_NAME,
        "number": (last.number + 1) if last else 1,
        "tree_size": size,
        "head": head["hash"] if head else verifier.GENESIS_HASH,
        "root": tree.root(size).hex(),
        "time": verifier.timestamp_text(timezone.now()),
        "previous": last.statement_hash if last else verifier.GENESIS_HASH,
    }
    signature = signing.sign(verifier.statement_bytes(statement))
    document = verifier.checkpoint_document(
        statement, signature, signing.key_id(), events_from=start + 1, event_hashes=hashes
    )
    checkpoint = AuditCheckpoint.objects.create(
        number=statement["number"],
        tree_size=size,
        head=statement["head"],
        root=statement["root"],
        time=statement["time"],
        previous=statement["previous"],
        statement_hash=verifier.checkpoint_hash(statement),
        signature=signature,
        key_id=signing.key_id(),
        document=verifier.dumps_document(document),
    )
    deliveries = CheckpointDelivery.objects.bulk_create(
        [CheckpointDelivery(checkpoint=checkpoint, sink=s) for s in settings.AUDIT_CHECKPOINT_SINKS]
    )
    ids = [d.pk for d in CheckpointDelivery.objects.filter(checkpoint=checkpoint)]
    if deliveries:
        transaction.on_commit(lambda: _queue(ids))
    logger.info("Audit checkpoint #%s: %s events", checkpoint.number, size)
    return checkpoint


def _queue(delivery_ids: list[int]) -> None:
    from oversight.audit.tasks import checkpoint_deliver

    for delivery_id in delivery_ids:
        checkpoint_deliver.delay(delivery_id)


def checkpoint_if_due() -> AuditCheckpoint | None:
    """The beat job's check: write one when enough events are new or the last is old,
    and more while a backlog remains (each bounded in size); the last one written."""
    written = None
    while checkpoint_due().due(timezone.now()):
        checkpoint = checkpoint_write()
        if checkpoint is None:
            break
        written = checkpoint
        if checkpoint_due().new_events < settings.AUDIT_CHECKPOINT_EVERY_EVENTS:
            break
    return written
