"""Reads behind the audit trust pages, for a given user: the chain's state (last
verification, last checkpoint and its deliveries, events not yet signed), one event with
its hashes and inclusion proof, and the checkpoint documents."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from oversight.accounts import roles
from oversight.audit import merkle, signing, verifier
from oversight.audit.checkpoints import REFUSED_KEY
from oversight.audit.diff import FieldChange, field_changes
from oversight.audit.models import (
    AuditCheckpoint,
    AuditEvent,
    CheckpointDelivery,
    VerificationRun,
    verifier_row_of,
)
from oversight.audit.proofs import checkpoint_latest, inclusion_proof
from oversight.audit.selectors import audit_events


@dataclass(frozen=True)
class RunProgress:
    run: VerificationRun
    bad_event_readable: bool  # the first bad seq opens in the event view

    @property
    def running(self) -> bool:
        return self.run.state == VerificationRun.State.RUNNING

    @property
    def percent(self) -> int:
        """Whole percent checked, 100 only once every event was."""
        run = self.run
        if run.total <= 0:
            return 0 if self.running else 100
        return min(100, run.checked * 100 // run.total)


def _progress(user: Any, run: VerificationRun | None) -> RunProgress | None:
    if run is None:
        return None
    seq = run.first_bad_seq
    readable = seq is not None and audit_events(user=user).filter(seq=seq).exists()
    return RunProgress(run, readable)


def verification_latest(*, user: Any) -> RunProgress | None:
    if not roles.can_read_audit_log(user):
        return None
    run = VerificationRun.objects.order_by("-started_at", "-pk").first()
    return _progress(user, run)


def verification_get(*, user: Any, pk: int) -> RunProgress | None:
    if not roles.can_read_audit_log(user):
        return None
    return _progress(user, VerificationRun.objects.filter(pk=pk).first())


def sink_display(sink: str) -> str:
    """A sink as the page shows it: a webhook by its host only, as its path or query may
    carry a secret."""
    kind, _, target = sink.partition(":")
    if kind == "webhook":
        parts = urlsplit(target)
        return f"webhook:{parts.scheme}://{parts.hostname or ''}/…"
    return sink


@dataclass(frozen=True)
class Delivery:
    sink: str
    state: str
    state_label: str
    attempts: int
    last_error: str
    delivered_at: dt.datetime | None


@dataclass(frozen=True)
class ChainState:
    verification: RunProgress | None
    checkpoint: AuditCheckpoint | None
    deliveries: list[Delivery]
    head_seq: int  # the newest event
    uncovered: int  # events newer than the last checkpoint
    uncovered_since: dt.datetime | None  # when the oldest of them was written
    stale: bool  # ... longer ago than a checkpoint is due
    max_age_seconds: int
    key_id: str  # "" when no signing key is configured
    public_key_pem: str
    # Why the last checkpoint was refused (the chain does not check out), and when; ""
    # once one is written again.
    refused_why: str = ""
    refused_at: dt.datetime | None = None

    @property
    def first_uncovered(self) -> int:
        return self.head_seq - self.uncovered + 1


def _signing_key() -> tuple[str, str]:
    try:
        return signing.key_id(), signing.public_key_pem()
    except ImproperlyConfigured:
        return "", ""


def chain_state(*, user: Any) -> ChainState | None:
    """What the audit page shows above the log; None for people who cannot read it."""
    if not roles.can_read_audit_log(user):
        return None
    checkpoint = checkpoint_latest()
    deliveries = []
    if checkpoint is not None:
        for row in CheckpointDelivery.objects.filter(checkpoint=checkpoint).order_by("pk"):
            deliveries.append(
                Delivery(
                    sink=sink_display(row.sink),
                    state=row.state,
                    state_label=row.get_state_display(),
                    attempts=row.attempts,
                    last_error=row.last_error,
                    delivered_at=row.delivered_at,
                )
            )
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    covered = checkpoint.tree_size if checkpoint else 0
    since = None
    if head > covered:
        since = AuditEvent.objects.filter(seq=covered + 1).values_list("created_at", flat=True)
        since = since.first()
    max_age = settings.AUDIT_CHECKPOINT_MAX_AGE_SECONDS
    stale = since is not None and (timezone.now() - since).total_seconds() > max_age
    key_id, pem = _signing_key()
    refused = cache.get(REFUSED_KEY) or {}
    return ChainState(
        verification=verification_latest(user=user),
        checkpoint=checkpoint,
        deliveries=deliveries,
        head_seq=head,
        uncovered=max(0, head - covered),
        uncovered_since=since,
        stale=stale,
        max_age_seconds=max_age,
        key_id=key_id,
        public_key_pem=pem,
        refused_why=refused.get("why", ""),
        refused_at=dt.datetime.fromisoformat(refused["at"]) if refused.get("at") else None,
    )


@dataclass(frozen=True)
class Inclusion:
    """An event's RFC 9162 inclusion proof in a checkpoint's tree, checked here with the
    verifier's own function, and whether that checkpoint's signature holds."""

    checkpoint: AuditCheckpoint
    leaf_index: int
    path: list[str]
    verifies: bool
    signature_valid: bool | None  # None: no key configured to check it with


@dataclass(frozen=True)
class EventDetail:
    event: AuditEvent
    changes: list[FieldChange]
    computed_hash: str
    inclusion: Inclusion | None  # None: no checkpoint covers it yet
    inclusion_error: str  # the proof could not be built (events or nodes missing)
    older: int | None  # the previous event this user may read
    newer: int | None

    @property
    def content_matches(self) -> bool:
        return self.computed_hash == self.event.hash


def _signature_valid(checkpoint: AuditCheckpoint) -> bool | None:
    try:
        key = verifier.public_key_from_pem(signing.public_key_pem().encode())
    except ImproperlyConfigured:
        return None
    statement = json.loads(checkpoint.document)["checkpoint"]
    return verifier.signature_valid(key, statement, checkpoint.signature)


def _inclusion(event: AuditEvent) -> tuple[Inclusion | None, str]:
    checkpoint = checkpoint_latest()
    try:
        proof = inclusion_proof(event, checkpoint)
        if proof is None or checkpoint is None:
            return None, ""
        verifies = verifier.verify_inclusion(
            proof["leaf_index"],
            proof["tree_size"],
            verifier.leaf_hash(event.hash),
            [bytes.fromhex(node) for node in proof["path"]],
            bytes.fromhex(proof["root"]),
        )
    except (merkle.TreeError, ValueError) as exc:  # events deleted, a hash not hex
        return None, str(exc)
    inclusion = Inclusion(
        checkpoint=checkpoint,
        leaf_index=proof["leaf_index"],
        path=proof["path"],
        verifies=verifies,
        signature_valid=_signature_valid(checkpoint),
    )
    return inclusion, ""


def audit_event_detail(*, user: Any, seq: int) -> EventDetail | None:
    """One event as its own page shows it, or None when the user may not read it in the
    list (then it does not exist for them)."""
    readable = audit_events(user=user)
    event = readable.with_stored_texts().filter(seq=seq).first()
    if event is None:
        return None
    row = verifier_row_of(event, (*verifier.HASHED_FIELDS, "hash"))
    inclusion, error = _inclusion(event)
    older = readable.filter(seq__lt=seq).values_list("seq", flat=True).first()
    newer = readable.filter(seq__gt=seq).order_by("seq").values_list("seq", flat=True).first()
    return EventDetail(
        event=event,
        changes=field_changes(event.before, event.after),
        computed_hash=verifier.compute_hash(row),
        inclusion=inclusion,
        inclusion_error=error,
        older=older,
        newer=newer,
    )


_DOCUMENTS_BATCH = 20  # a document lists up to AUDIT_CHECKPOINT_EVERY_EVENTS hashes


def checkpoint_documents(*, user: Any) -> AsyncIterator[str]:
    """Every checkpoint document, oldest first, one JSON line each (what the sinks
    received, and what ``audit_verify --checkpoints`` reads). Asynchronous, so that an
    ASGI server streams it: with their event hash lists, a large log's documents do not
    fit in memory at once. Who may read them is decided here, before streaming starts."""
    return _documents(readable=roles.can_read_audit_log(user))


async def _documents(*, readable: bool) -> AsyncIterator[str]:
    after = 0
    while readable:
        rows = AuditCheckpoint.objects.filter(number__gt=after).order_by("number")
        batch = [row async for row in rows.values_list("number", "document")[:_DOCUMENTS_BATCH]]
        if not batch:
            return
        yield "".join(document + "\n" for _, document in batch)
        after = batch[-1][0]
