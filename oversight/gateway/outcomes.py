"""The write of an outcome report: an action's reported outcome and its audit event, or
what prevents them, having written nothing.

The caller (lifecycle.action_report_result) reads the action, checks it, and sets the
reported values on it; this writes them only if the action is still in the status it
read, with credentials that are still the database's. One contract, one implementation
per database, as for decisions (recording.py):

- PostgreSQL: one call of the database procedure ``action_report``
  (gateway/sql/action_report.v2.sql), so a report is one statement and, outside a
  transaction, its own transaction: nothing is locked while Python works, and it shares
  its WAL flushes with the decisions (docs/decisions/0028-one-statement-outcome-reports.md).
- SQLite: the same check and writes through the ORM, in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from oversight.audit.append_sql import COLUMNS as AUDIT_COLUMNS
from oversight.audit.services import audit_append_call, audit_record, audit_row
from oversight.gateway.auth import credentials_fingerprint
from oversight.gateway.models import Action
from oversight.lib import prepared

RECORDED = "recorded"
STALE = "stale"  # the credentials changed since they were read
CHANGED = "changed"  # the action's status changed since it was read

# The action's id, agent, read status, new status, after, error and finished_at; the audit
# event's columns (audit_append_call's); the token's hash and fingerprint; whether to
# commit. The six OUT parameters come back as the one row.
_PLACEHOLDERS = ["%s::uuid", "%s", "%s", "%s", "%s::jsonb", "%s", "%s"]
_PLACEHOLDERS += ["%s"] * len(AUDIT_COLUMNS) + ["%s", "%s", "%s"]
CALL_SQL = f"CALL action_report({', '.join(_PLACEHOLDERS)}{', NULL' * 6})"


@dataclass(frozen=True)
class OutcomeWrite:
    """Everything the write needs, decided beforehand."""

    action: Action  # as read, with the reported status, after, error and finished_at set
    from_status: str  # the status it was read with
    audit: dict[str, Any]  # audit_record's arguments
    token_hash: str
    fingerprint: str


def outcome_write(write: OutcomeWrite) -> str:
    """Write ``write``: RECORDED, or STALE or CHANGED (nothing written then)."""
    if connection.vendor == "postgresql":
        return _write_postgresql(write)
    return _write_orm(write)


def _write_postgresql(write: OutcomeWrite) -> str:
    db = connections[DEFAULT_DB_ALIAS]
    commit_async = db.get_autocommit() and not db.in_atomic_block
    action = write.action
    _, audit_params = audit_append_call(audit_row(**write.audit))
    params = [
        action.pk,
        action.agent_id,
        write.from_status,
        action.status,
        None if action.after is None else json.dumps(action.after, ensure_ascii=False),
        action.error,
        action.finished_at,
        *audit_params,
        write.token_hash,
        write.fingerprint,
        commit_async,
    ]
    result = prepared.fetch_one(CALL_SQL, params)
    if result is None:  # the procedure always answers one row; never guess
        raise RuntimeError("action_report answered nothing")
    return result[0]


@transaction.atomic
def _write_orm(write: OutcomeWrite) -> str:
    if credentials_fingerprint(write.token_hash) != write.fingerprint:
        return STALE
    action = write.action
    claimed = Action.objects.filter(
        pk=action.pk, agent_id=action.agent_id, status=write.from_status
    ).update(
        status=action.status, after=action.after, error=action.error, finished_at=action.finished_at
    )
    if not claimed:
        return CHANGED
    audit_record(**write.audit)
    return RECORDED
