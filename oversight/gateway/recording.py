"""Writing a new decision: its Action row and AuditEvent.

``action_record_at_once`` (PostgreSQL, outside any transaction): the usual case in one
call of the database function ``decision_record`` (record_sql.py), its own transaction.

``action_record`` (the general path, in the caller's transaction): on PostgreSQL the
insert, the idempotency key's link to the action and the audit append (a database
function, oversight/audit/append_sql.py) are one prepared statement, sent as late as the
decision allows, since the limit counters it charged stay locked until the commit;
elsewhere the ORM writes them one after the other.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import DatabaseError, connection

from oversight.audit.append_sql import CALL_SQL
from oversight.audit.services import (
    audit_append_call,
    audit_event_appended,
    audit_record,
    audit_row,
)
from oversight.gateway import record_sql
from oversight.gateway.models import Action, IdempotencyKey
from oversight.lib import prepared
from oversight.policy.limits import charge_arrays
from oversight.policy.models import Limit


@cache
def _record_sql(with_key: bool) -> str:
    """One statement: the action's insert and the key's link as data-modifying CTEs, then
    the audit append (whose own statements see fresh snapshots, see append_sql.py)."""
    fields = Action._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Only table and column names from the models are interpolated; values are parameters.
    ctes = [
        f"new_action AS (INSERT INTO {Action._meta.db_table} ({columns})"  # noqa: S608
        f" VALUES ({placeholders}))"
    ]
    if with_key:
        ctes.append(
            f"key_link AS (UPDATE {IdempotencyKey._meta.db_table} SET action_id = %s"  # noqa: S608
            " WHERE agent_id = %s AND key = %s)"
        )
    return f"WITH {', '.join(ctes)} {CALL_SQL}"


def _insert_params(action: Action) -> list[Any]:
    """The values the ORM would send, prepared by each field as an insert does."""
    return [
        field.get_db_prep_save(field.pre_save(action, True), connection)
        for field in Action._meta.concrete_fields
    ]


def action_record(*, action: Action, audit: dict[str, Any], idempotency_key: str = "") -> Action:
    """Insert ``action`` (unsaved, its id set), link the idempotency key already claimed,
    and append the audit event described by ``audit`` (``audit_record``'s arguments)."""
    if connection.vendor != "postgresql":
        action.save(force_insert=True)
        if idempotency_key:
            IdempotencyKey.objects.filter(agent_id=action.agent_id, key=idempotency_key).update(
                action=action
            )
        audit_record(**audit)
        return action
    row = audit_row(**audit)
    _, audit_params = audit_append_call(row)
    params = _insert_params(action)
    if idempotency_key:
        params += [action.pk, action.agent_id, idempotency_key]
    appended = prepared.fetch_one(_record_sql(bool(idempotency_key)), [*params, *audit_params])
    audit_event_appended(row, appended)
    action._state.adding = False
    action._state.db = connection.alias
    return action


def _action_json(action: Action) -> str:
    """The row for ``jsonb_populate_record``: columns left out (None) are NULL."""
    values: dict[str, Any] = {}
    for field in Action._meta.concrete_fields:
        value = field.pre_save(action, True)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        values[field.column] = value
    return json.dumps(values, ensure_ascii=False)


def action_record_at_once(
    *,
    action: Action,
    audit: dict[str, Any],
    idempotency_key: str,
    body_hash: str,
    charges: list[tuple[Limit, Decimal]],
    now: dt.datetime,
    credentials: tuple[str, str | None],
) -> bool:
    """PostgreSQL, outside any transaction: claim the key, charge ``charges``, insert
    ``action`` and append its audit event, all in one statement (``decision_record``).
    ``credentials``: the token's hash and fingerprint (None: not checked).
    False, with nothing written, when the key was seen before, a limit would be exceeded
    or the credentials changed."""
    row = audit_row(**audit)
    _, audit_params = audit_append_call(row)
    params = [
        _action_json(action),
        idempotency_key,
        body_hash,
        *charge_arrays(charges, now),
        prepared.array_literal(amount for _, amount in charges),
        *audit_params,
        *credentials,
    ]
    try:
        result = prepared.fetch_one(record_sql.CALL_SQL, params)
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) in (
            record_sql.KEY_SEEN,
            record_sql.LIMIT_EXCEEDED,
            record_sql.CREDENTIALS_CHANGED,
        ):
            return False
        raise
    usage = result[0]
    action.limit_usage = json.loads(usage) if isinstance(usage, str) else usage
    audit_event_appended(row, result[1:])
    action._state.adding = False
    action._state.db = connection.alias
    return True
