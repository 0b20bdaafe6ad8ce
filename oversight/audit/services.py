"""The one writer of audit events."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from oversight.audit.actors import Actor
from oversight.audit.chain import GENESIS_HASH, compute_hash
from oversight.audit.models import AuditEvent
from oversight.audit.snapshot import to_json_value
from oversight.lib.request_id import current_request_id

# Arbitrary but fixed key for pg_advisory_xact_lock: "serialise audit appends".
_APPEND_LOCK_KEY = 0x0A5D17


# One round trip: in a simple query each statement takes its own snapshot, so the SELECT
# sees the head as it is once the lock is granted. No parameters: a constant key.
_LOCK_AND_READ_HEAD = (
    f"SELECT pg_advisory_xact_lock({_APPEND_LOCK_KEY});"  # noqa: S608 (constants only)
    f" SELECT seq, hash FROM {AuditEvent._meta.db_table} ORDER BY seq DESC LIMIT 1"
)


def _locked_chain_head() -> dict[str, Any] | None:
    """The last event's seq and hash, with appenders serialised until this transaction
    ends, so the chain cannot fork.

    On PostgreSQL a transaction-scoped advisory lock; on SQLite the IMMEDIATE
    transaction already holds the database write lock.
    """
    if connection.vendor != "postgresql":
        return AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_AND_READ_HEAD)
        cursor.nextset()
        row = cursor.fetchone()
    return {"seq": row[0], "hash": row[1]} if row else None


def _target_fields(target: Model | tuple[str, str, str]) -> tuple[str, str, str]:
    if isinstance(target, tuple):
        return target
    return target._meta.label_lower, str(target.pk), str(target)[:200]


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
    target_type, target_id, target_label = _target_fields(target)
    if agent_id is None and target_type == "agents.agent":
        agent_id = int(target_id)

    # Taken as late as possible in the caller's transaction and held to its end.
    last = _locked_chain_head()
    row: dict[str, Any] = {
        "seq": (last["seq"] + 1) if last else 1,
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
        "prev_hash": last["hash"] if last else GENESIS_HASH,
    }
    row["hash"] = compute_hash(row)
    return AuditEvent.objects.create(**row)


@transaction.atomic
def audit_record_standalone(**kwargs: Any) -> AuditEvent:
    """For events that are themselves the change (a login, an export)."""
    return audit_record(**kwargs)
