"""The one writer of audit events."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Model
from django.utils import timezone

from oversight.audit.actors import Actor
from oversight.audit.append_sql import CALL_SQL, COLUMNS
from oversight.audit.chain import GENESIS_HASH, canonical_text, compute_hash
from oversight.audit.models import AuditEvent
from oversight.audit.snapshot import to_json_value
from oversight.lib import prepared
from oversight.lib.request_id import current_request_id


def _append_sqlite(row: dict[str, Any]) -> AuditEvent:
    """The IMMEDIATE transaction already holds the database write lock."""
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    row["seq"] = (last["seq"] + 1) if last else 1
    row["prev_hash"] = last["hash"] if last else GENESIS_HASH
    row["hash"] = compute_hash(row)
    return AuditEvent.objects.create(**row)


def audit_append_call(row: dict[str, Any]) -> tuple[str, list[Any]]:
    """PostgreSQL: the statement that appends ``row`` (all but seq, prev_hash and hash),
    for callers that send it together with their own statements in one round trip."""
    params = [row[column] for column in COLUMNS]
    params[COLUMNS.index("before")] = _json_text(row["before"])
    params[COLUMNS.index("after")] = _json_text(row["after"])
    return CALL_SQL, params


def audit_event_appended(row: dict[str, Any], result: tuple[Any, ...]) -> AuditEvent:
    """The AuditEvent for ``row``, given what ``audit_append`` returned."""
    pk, seq, prev_hash, hash_ = result
    event = AuditEvent(id=pk, seq=seq, prev_hash=prev_hash, hash=hash_, **row)
    event._state.adding = False
    event._state.db = DEFAULT_DB_ALIAS  # django.db.connection's
    return event


def _json_text(value: Any) -> str | None:
    """As the column keeps it: the canonical text the hash covers (fields.py)."""
    return None if value is None else canonical_text(value)


def _append_postgresql(row: dict[str, Any]) -> AuditEvent:
    sql, params = audit_append_call(row)
    return audit_event_appended(row, prepared.fetch_one(sql, params))


def _target_fields(target: Model | tuple[str, str, str]) -> tuple[str, str, str]:
    if isinstance(target, tuple):
        return target
    return target._meta.label_lower, str(target.pk), str(target)[:200]


def audit_row(
    *,
    actor: Actor,
    verb: str,
    target: Model | tuple[str, str, str],
    before: Any = None,
    after: Any = None,
    agent_id: int | None = None,
) -> dict[str, Any]:
    """The event's columns, all but its place in the chain (seq, prev_hash, hash)."""
    target_type, target_id, target_label = _target_fields(target)
    if agent_id is None and target_type == "agents.agent":
        agent_id = int(target_id)
    return {
        "created_at": timezone.now(),
        "actor_type": actor.type,
        "actor_user_id": actor.user_id,
        "actor_agent_id": actor.agent_id,
        "actor_label": actor.label,
        "verb": verb,
        "target_type": target_type,
        "target_id": target_id,
        "target_label": target_label,
        "agent_id": agent_id,
        "request_id": current_request_id(),
        "before": to_json_value(before),
        "after": to_json_value(after),
    }


def audit_record(
    *,
    actor: Actor,
    verb: str,
    target: Model | tuple[str, str, str],
    before: Any = None,
    after: Any = None,
    agent_id: int | None = None,
) -> AuditEvent:
    """Append one event. Must run inside the transaction of the change it records.

    ``target`` is a model instance or a ``(type, id, label)`` triple. Events
    about an agent (or anything belonging to one) pass ``agent_id`` so they
    show in that agent's history; an Agent target sets it by itself.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    row = audit_row(
        actor=actor, verb=verb, target=target, before=before, after=after, agent_id=agent_id
    )
    # The append lock is taken here, as late as possible, and held to the transaction's end.
    if connection.vendor == "postgresql":
        return _append_postgresql(row)
    return _append_sqlite(row)


@transaction.atomic
def audit_record_standalone(**kwargs: Any) -> AuditEvent:
    """For events that are themselves the change (a login, an export)."""
    return audit_record(**kwargs)
