"""The pipeline's record step: write a decided action and its audit event, or report what
prevents it, having written nothing.

One contract, one implementation per database:

- PostgreSQL: one call of the database procedure ``decision_record``
  (gateway/sql/decision_record.v7.sql), so a warm decision is written by one statement;
  outside a transaction that statement is its own transaction and nothing waits on Python
  while it holds the limit counters and the audit lock. It commits without waiting for
  its WAL flush, releasing those locks at once, and waits for the flush in a second
  transaction of the same statement before anything is answered
  (docs/decisions/0027-decisions-share-their-flushes.md).
- SQLite (the zero-install default and the fast unit tests, see
  docs/decisions/0011-one-decision-pipeline.md): the same checks and writes through the
  ORM, in one IMMEDIATE transaction, which serialises every writer.

Both check, in this order: the credentials the decision was made from (the kill switches
among them), the parent, the Idempotency-Key, the limits (all or none); then write. What
they find is a ``Found``; the pipeline decides what follows.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from oversight.audit.services import (
    audit_append_call,
    audit_event_appended,
    audit_record,
    audit_row,
)
from oversight.gateway import record_sql
from oversight.gateway.auth import credentials_fingerprint
from oversight.gateway.models import Action, IdempotencyKey
from oversight.lib import prepared
from oversight.policy.limits import Charges, charge_arrays, limits_charge

RECORDED = "recorded"
STALE = "stale"
NO_PARENT = "no_parent"
KEY_SEEN = "key_seen"
LIMIT_EXCEEDED = "limit_exceeded"


@dataclass(frozen=True)
class Found:
    """What the record step found: ``kind`` is one of the constants above."""

    kind: str
    exceeded: list[int] = field(default_factory=list)  # limit ids, for LIMIT_EXCEEDED
    seen_action: uuid.UUID | None = None  # for KEY_SEEN
    seen_body_hash: str = ""


@dataclass(frozen=True)
class Write:
    """Everything the record step writes, decided beforehand."""

    action: Action  # unsaved, its id set
    audit: dict[str, Any]  # audit_record's arguments
    charges: Charges
    idempotency_key: str
    body_hash: str
    token_hash: str
    fingerprint: str
    now: dt.datetime


def decision_write(write: Write) -> Found:
    """Write ``write`` or report why not (nothing written then)."""
    if connection.vendor == "postgresql":
        return _write_postgresql(write, connections[DEFAULT_DB_ALIAS])
    return _write_orm(write)


# --- PostgreSQL -----------------------------------------------------------------------


def _action_json(action: Action) -> str:
    """The row for ``jsonb_populate_record``: columns left out (None) are NULL."""
    values: dict[str, Any] = {}
    for column_field in Action._meta.concrete_fields:
        value = column_field.pre_save(action, True)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        values[column_field.column] = value
    return json.dumps(values, ensure_ascii=False)


def _write_postgresql(write: Write, db: BaseDatabaseWrapper) -> Found:
    # The statement is its own transaction: it commits before its flush, then waits for
    # it (see above).
    commit_async = db.get_autocommit() and not db.in_atomic_block
    row = audit_row(**write.audit)
    _, audit_params = audit_append_call(row)
    charges = write.charges
    params = [
        _action_json(write.action),
        write.idempotency_key,
        write.body_hash,
        *charge_arrays(charges, write.now),
        prepared.array_literal(str(amount) for _, amount in charges),
        *audit_params,
        write.token_hash,
        write.fingerprint,
        commit_async,
    ]
    result = prepared.fetch_one(record_sql.CALL_SQL, params)
    if result is None:  # the procedure always answers one row; never guess
        raise RuntimeError("decision_record answered nothing")
    kind, usage, exceeded, seen_action, seen_body_hash = result[:5]
    if kind != RECORDED:
        return Found(kind, list(exceeded or []), seen_action, seen_body_hash or "")
    write.action.limit_usage = json.loads(usage) if isinstance(usage, str) else usage
    audit_event_appended(row, result[5:9])
    _mark_saved(write.action)
    return Found(RECORDED)


# --- SQLite (and any other database): the ORM -------------------------------------------


def parent_known(*, agent_id: int, parent_id: uuid.UUID | None) -> bool:
    """A parent, if given, is an action of the same agent (decision_record checks the
    same in SQL; the pipeline's preview uses this one)."""
    return parent_id is None or Action.objects.filter(pk=parent_id, agent_id=agent_id).exists()


class _LimitExceeded(Exception):
    def __init__(self, limit_ids: list[int]) -> None:
        self.limit_ids = limit_ids


def _claim_key(write: Write) -> IdempotencyKey | None:
    """Insert the key, or return the row inserted before."""
    agent_id = write.action.agent_id
    key, created = IdempotencyKey.objects.get_or_create(
        agent_id=agent_id,
        key=write.idempotency_key,
        defaults={"body_hash": write.body_hash, "created_at": timezone.now()},
    )
    return None if created else key


@transaction.atomic
def _write_orm(write: Write) -> Found:
    action = write.action
    if credentials_fingerprint(write.token_hash) != write.fingerprint:
        return Found(STALE)
    if not parent_known(agent_id=action.agent_id, parent_id=action.parent_id):
        return Found(NO_PARENT)
    try:
        with transaction.atomic():  # the key and the charges, all or none
            if write.idempotency_key:
                seen = _claim_key(write)
                if seen is not None:
                    return Found(
                        KEY_SEEN, seen_action=seen.action_id, seen_body_hash=seen.body_hash
                    )
            charged = limits_charge(write.charges, write.now)
            missing = [limit.pk for limit, _ in write.charges if limit.pk not in charged]
            if missing:
                raise _LimitExceeded(missing)
    except _LimitExceeded as exceeded:
        return Found(LIMIT_EXCEEDED, exceeded=exceeded.limit_ids)
    action.limit_usage = [
        {"limit_id": limit.pk, "counter_id": charged[limit.pk], "amount": str(amount)}
        for limit, amount in write.charges
    ]
    action.save(force_insert=True)
    if write.idempotency_key:
        IdempotencyKey.objects.filter(agent_id=action.agent_id, key=write.idempotency_key).update(
            action=action
        )
    audit_record(**write.audit)
    return Found(RECORDED)


def _mark_saved(action: Action) -> None:
    action._state.adding = False
    action._state.db = DEFAULT_DB_ALIAS  # django.db.connection's
