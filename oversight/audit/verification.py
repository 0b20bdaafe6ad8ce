"""Verify the stored log: the chain, the checkpoints kept outside the database, and that
every action has its decision event. The rules are verifier.py's; this reads the rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from oversight.audit import verbs, verifier
from oversight.audit.models import AuditEvent, stored_row_checked
from oversight.audit.rehash import rows_rehashed
from oversight.audit.verifier import Checkpoint, Finding

ACTION_TARGET = "gateway.action"
_PROGRESS_EVERY = 20_000


@dataclass(frozen=True)
class Outcome:
    checked: int
    total: int
    finding: Finding | None

    @property
    def exit_code(self) -> int:
        return self.finding.code if self.finding else verifier.EXIT_OK


def _rows_in_order(batch_size: int) -> Iterator[dict[str, Any]]:
    yield from AuditEvent.objects.order_by("seq").as_stored().iterator(chunk_size=batch_size)


def _rows_to_check(batch_size: int) -> Iterator[tuple[dict[str, Any], bool]]:
    """(row, content_ok) in order. On PostgreSQL the database rehashes each row
    (rehash.py) and a row it vouches for comes as its seq and hashes only; any other is
    read as stored and checked by the verifier's rules in Python (stored_row_checked)."""
    if connection.vendor != "postgresql":
        for row in _rows_in_order(batch_size):
            yield stored_row_checked(row)
        return
    whole: dict[int, tuple[dict[str, Any], bool]] = {}
    for seq, prev_hash, hash_, ok, leaf in rows_rehashed(batch_size):
        if ok:
            yield {"seq": seq, "prev_hash": prev_hash, "hash": hash_, "leaf": leaf}, True
            continue
        if seq not in whole:  # the next batch of rows from here, as stored
            rows = AuditEvent.objects.filter(seq__gte=seq).order_by("seq").as_stored()
            whole = {row["seq"]: stored_row_checked(row) for row in rows[:batch_size]}
        # Gone since it was streamed: nothing vouches for it.
        yield whole.get(seq) or ({"seq": seq, "prev_hash": prev_hash, "hash": hash_}, False)


# Set differences (hashed or sorted, never a nested loop, whatever the statistics say),
# then the first of what is left.
_ORPHAN_ACTION_SQL = """
SELECT a.id FROM gateway_action a
JOIN (SELECT id::text AS id FROM gateway_action
      EXCEPT SELECT target_id FROM audit_auditevent WHERE target_type = %s AND verb = %s) d
  ON d.id = a.id::text
ORDER BY a.created_at LIMIT 1
"""
_ORPHAN_EVENT_SQL = """
SELECT min(e.seq) FROM audit_auditevent e
JOIN (SELECT target_id FROM audit_auditevent WHERE target_type = %s AND verb = %s
      EXCEPT SELECT id::text FROM gateway_action) d
  ON d.target_id = e.target_id
WHERE e.target_type = %s AND e.verb = %s
"""


def _orphans() -> tuple[Any, int | None]:
    """(an action without its decision event, the seq of a decision event without its
    action): two anti-joins on PostgreSQL; in Python on SQLite, whose UUIDs are stored
    without dashes."""
    from oversight.gateway.models import Action

    args = [ACTION_TARGET, verbs.ACTION_DECIDED]
    if connection.vendor == "postgresql":
        # Whole-table work: not bound by the statement timeout meant for requests.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")
            cursor.execute(_ORPHAN_ACTION_SQL, args)
            action = cursor.fetchone()
            cursor.execute(_ORPHAN_EVENT_SQL, args + args)
            event = cursor.fetchone()
        return (action[0] if action else None), (event[0] if event else None)
    decided = dict(
        AuditEvent.objects.filter(target_type=ACTION_TARGET, verb=verbs.ACTION_DECIDED)
        .order_by("-seq")
        .values_list("target_id", "seq")
    )
    action = None
    for pk in Action.objects.order_by("created_at").values_list("pk", flat=True).iterator():
        if decided.pop(str(pk), None) is None and action is None:
            action = pk
    return action, min(decided.values(), default=None)


def actions_without_decision() -> Finding | None:
    """An action row with no ``action.decided`` event (its event was deleted), or a
    decision event naming an action that does not exist (the action row was deleted)."""
    from oversight.gateway.models import Action

    action_id, seq = _orphans()
    if action_id is not None:
        action = Action.objects.get(pk=action_id)
        return Finding(
            verifier.EXIT_ACTIONS,
            f"action {action.pk} ({action.action} on {action.resource}, "
            f"{action.created_at:%Y-%m-%d %H:%M:%S}) has no decision event: its event was "
            "removed from the log",
        )
    if seq is not None:
        event = AuditEvent.objects.get(seq=seq)
        return Finding(
            verifier.EXIT_ACTIONS,
            f"seq {seq} records the decision on action {event.target_id}, which does not "
            "exist: the action row was removed",
            seq=seq,
        )
    return None


def audit_log_verify(
    *,
    checkpoints: Sequence[Checkpoint] = (),
    public_key: Any = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 20_000,
) -> Outcome:
    """Walk every event in order against the chain rules and the checkpoints (already
    read from outside the database), then match actions with their decision events.
    ``progress(checked, total)`` is called every 20,000 events."""
    total = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if checkpoints:
        problem = verifier.check_checkpoints(checkpoints, public_key)
        if problem:
            return Outcome(0, total, problem)
    walk = verifier.Verification(checkpoints=checkpoints)
    for row, content_ok in _rows_to_check(batch_size):
        if not walk.add(row, content_ok):
            break
        if progress and walk.checked % _PROGRESS_EVERY == 0:
            progress(walk.checked, total)
    finding = walk.finish() or actions_without_decision()
    if progress:
        progress(walk.checked, total)
    return Outcome(walk.checked, total, finding)


def audit_chain_verify(*, batch_size: int = 20_000) -> tuple[int, verifier.ChainBreak | None]:
    """The chain alone: (rows checked, first break or None)."""
    outcome = audit_log_verify(batch_size=batch_size)
    finding = outcome.finding
    if finding is None or finding.code != verifier.EXIT_CHAIN:
        return outcome.checked, None
    return outcome.checked, verifier.ChainBreak(finding.seq or 0, finding.message)
