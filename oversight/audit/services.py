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


def _lock_chain_head() -> None:
    """Serialise appenders until this transaction ends, so the chain cannot fork.

    On PostgreSQL a transaction-scoped advisory lock; on SQLite the IMMEDIATE
    transaction already holds the database write lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_APPEND_LOCK_KEY])


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
    _lock_chain_head()
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
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
