"""Writes behind the audit trust pages: verification runs (started from the audit page or
by the nightly job, one at a time, with their progress and result) and evidence bundle
downloads. The rules are verifier.py's; the walk is verification.py's."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from oversight.audit import signing, verbs, verifier
from oversight.audit.actors import Actor
from oversight.audit.bundle import Bundle, bundle_build
from oversight.audit.models import AuditCheckpoint, AuditEvent, VerificationRun
from oversight.audit.selectors import AuditFilters
from oversight.audit.services import audit_record, audit_record_standalone
from oversight.audit.verification import Outcome, audit_log_verify

logger = logging.getLogger(__name__)

# Serializes starts on PostgreSQL (SQLite's IMMEDIATE transactions hold the write lock
# from BEGIN, which does it there). Next to checkpoints.CHECKPOINT_LOCK_KEY.
VERIFICATION_LOCK_KEY = 679193
# A run still "running" this long after it started lost its worker (a crash, a deploy):
# the next start marks it failed instead of waiting for it forever. A walk of the log
# runs at about 200,000 events a second, so a live run this old would be a log of some
# 700 million events; past that size, raise this.
ABANDONED_AFTER = dt.timedelta(hours=1)
RUNNING = VerificationRun.State.RUNNING


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [VERIFICATION_LOCK_KEY])


def _claim(*, started_by: str) -> tuple[VerificationRun, bool]:
    """A new run, or the one already running (False). Two people pressing "verify" at
    once would otherwise both see no run and start two walks: the lock orders them, and
    the second finds the first's row."""
    _lock()
    running = VerificationRun.objects.filter(state=RUNNING).order_by("-started_at").first()
    if running is not None and running.started_at > timezone.now() - ABANDONED_AFTER:
        return running, False
    VerificationRun.objects.filter(state=RUNNING).update(
        state=VerificationRun.State.FAILED,
        finished_at=timezone.now(),
        message="did not finish: its worker stopped before the end",
    )
    return VerificationRun.objects.create(started_by=started_by), True


@transaction.atomic
def verification_start(*, actor: Actor) -> tuple[VerificationRun, bool]:
    """Start a walk of the whole log in a worker, or return the run already going
    (False). The start is an audit event: who checked the log, and when."""
    run, created = _claim(started_by=actor.label)
    if created:
        audit_record(
            actor=actor,
            verb=verbs.AUDIT_VERIFICATION_STARTED,
            target=("audit.verification", str(run.pk), f"verification #{run.pk}"),
            after={"run": run.pk},
        )
        transaction.on_commit(partial(_queue, run.pk))
    return run, created


def _queue(run_id: int) -> None:
    from oversight.audit.tasks import audit_verification_run

    audit_verification_run.delay(run_id)


def verification_run_here(*, started_by: str) -> VerificationRun | None:
    """For jobs: start a run and walk the log in this process; None when another run is
    going (it will record the same result)."""
    with transaction.atomic():
        run, created = _claim(started_by=started_by)
    if not created:
        return None
    return verification_execute(run_id=run.pk)


def checkpoints_to_verify() -> tuple[list[verifier.Checkpoint], str]:
    """The checkpoints a run checks the log against, and where they came from.

    Those in the first directory sink: kept outside the database, they catch a tail
    deletion or a rewrite even by someone who also removed the database's copies (the
    same as ``audit_verify --checkpoints DIR``). Without a directory sink, the database's
    copies; statements only, as their event lists would hold every hash in memory (a
    rewrite is still found, by root, from the checkpoint before it).
    """
    for sink in settings.AUDIT_CHECKPOINT_SINKS:
        kind, _, target = sink.partition(":")
        if kind == "dir":
            found = verifier.read_checkpoints(target) if Path(target).is_dir() else []
            return found, f"the directory {target}"
    documents = AuditCheckpoint.objects.order_by("number").values_list("document", flat=True)
    stored = []
    for document in documents.iterator(chunk_size=200):
        parsed = json.loads(document)
        parsed.pop("events", None)
        stored.append(verifier.Checkpoint.from_document(parsed, source="the database"))
    return stored, "the database's copies"


def _public_key() -> Any:
    return verifier.public_key_from_pem(signing.public_key_pem().encode())


def verification_execute(*, run_id: int) -> VerificationRun:
    """Walk the log for a running run, recording its progress (every 20,000 events, as
    ``audit_log_verify`` reports it) and its result. A run that is no longer running (a
    task delivered twice, or one marked abandoned) is left as it is."""
    run = VerificationRun.objects.get(pk=run_id)
    if run.state != RUNNING:
        return run
    mine = VerificationRun.objects.filter(pk=run_id, state=RUNNING)
    total = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    mine.update(total=total, checked=0)
    try:
        checkpoints, source = checkpoints_to_verify()
        public_key = _public_key() if checkpoints else None
    except (OSError, ValueError, KeyError, ImproperlyConfigured) as exc:
        finding = verifier.Finding(verifier.EXIT_UNREADABLE, f"cannot read the checkpoints: {exc}")
        _finish(mine, Outcome(0, total, finding), checkpoints=0, source="")
        return VerificationRun.objects.get(pk=run_id)
    try:
        outcome = audit_log_verify(
            checkpoints=checkpoints,
            public_key=public_key,
            progress=lambda checked, total: mine.update(checked=checked, total=total),
        )
    except Exception as exc:  # recorded on the run, which must not stay "running"
        logger.exception("Audit verification %s stopped", run_id)
        mine.update(
            state=VerificationRun.State.FAILED,
            finished_at=timezone.now(),
            message=f"the verification stopped: {type(exc).__name__}: {exc}"[:2000],
        )
        return VerificationRun.objects.get(pk=run_id)
    _finish(mine, outcome, checkpoints=len(checkpoints), source=source)
    return VerificationRun.objects.get(pk=run_id)


def _finish(
    mine: QuerySet[VerificationRun], outcome: Outcome, *, checkpoints: int, source: str
) -> None:
    finding = outcome.finding
    if finding is None:
        plural = "s" if checkpoints != 1 else ""
        against = f" against {checkpoints} checkpoint{plural} from {source}" if checkpoints else ""
        message = (
            f"{outcome.checked} events verified{against}; every action has its decision event."
        )
    else:
        message = finding.message
    mine.update(
        state=VerificationRun.State.PASSED if finding is None else VerificationRun.State.FAILED,
        finished_at=timezone.now(),
        checked=outcome.checked,
        total=outcome.total,
        checkpoints=checkpoints,
        exit_code=outcome.exit_code,
        message=message,
        first_bad_seq=finding.seq if finding else None,
        checkpoint_number=finding.checkpoint if finding else None,
    )


def audit_bundle_export(
    *, actor: Actor, events: QuerySet[AuditEvent], filters: AuditFilters
) -> Bundle:
    """An evidence bundle of ``events`` (what the person may read) that ``filters``
    select, recorded like any export once it is built. Raises BundleError when nothing
    matches or the range is too large. Not one transaction: building writes a checkpoint
    first, and its lock must not be held while the events are read."""
    bundle = bundle_build(events=events, filters=filters, site=settings.SITE_URL)
    scope = {key: str(value) for key, value in asdict(filters).items() if value}
    audit_record_standalone(
        actor=actor,
        verb=verbs.AUDIT_EXPORTED,
        target=("audit.log", "bundle", "audit log (bundle)"),
        after={**scope, "events": bundle.events, "checkpoint": bundle.checkpoint},
    )
    return bundle
