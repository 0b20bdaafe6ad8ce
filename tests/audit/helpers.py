from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import connection, transaction

from oversight.audit.actors import Actor
from oversight.audit.append_sql import CALL_SQL, COLUMNS
from oversight.audit.db_roles import has_owner_database, owner_cursor
from oversight.audit.services import audit_record
from oversight.audit.triggers import IMMUTABLE_TRIGGERS, TABLE
from oversight.audit.verifier import content_matches, with_stored_texts


def record(n: int, *, verb: str = "test.event") -> None:
    for i in range(n):
        with transaction.atomic():
            audit_record(
                actor=Actor.system("tests"),
                verb=verb,
                target=("test.thing", str(i), f"thing {i}"),
                before={"n": i},
                after={"n": i + 1, "note": "ünïcode ✓", "amount": 12.5},
            )


def tamper(sql: str, params: list[object] | None = None) -> None:
    """Run SQL as an attacker with direct database access would: around the trigger.

    On PostgreSQL only the tables' owner may switch the trigger off, and the tests connect
    as the runtime role (bin/test), so the SQL runs on a connection of the owner's: the
    rows to tamper with must be committed (``django_db(transaction=True)``)."""
    if connection.vendor != "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params or [])
        return
    if has_owner_database() and connection.in_atomic_block:
        raise RuntimeError(
            "tamper() runs as the owner, on a connection of its own, and cannot see this"
            " test's uncommitted rows: mark the test django_db(transaction=True)"
        )
    with owner_cursor(fallback=connection) as cursor:
        for name in IMMUTABLE_TRIGGERS:
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {name}")
        cursor.execute(sql, params or [])
        for name in IMMUTABLE_TRIGGERS:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {name}")


def append_as_sent(before: str | None, after: str | None) -> tuple[Any, ...]:
    """PostgreSQL: append an event whose before and after are sent as these JSON texts, as
    a role holding the runtime credentials could send them by hand; (before, after) as
    the row keeps them. Checks that the verifier's hash of the row, given the texts where
    they are not canonical (as an export gives them), is the database's."""
    row: dict[str, Any] = {
        "created_at": dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC),
        "actor_type": "system",
        "actor_user_id": None,
        "actor_agent_id": None,
        "actor_label": "by hand",
        "verb": "test.layout",
        "target_type": "test",
        "target_id": "1",
        "target_label": "test",
        "agent_id": None,
        "request_id": "",
    }
    params = [before if c == "before" else after if c == "after" else row[c] for c in COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(CALL_SQL, params)
        new_id = cursor.fetchone()[0]
        cursor.execute(
            "SELECT seq, prev_hash, hash, before::text, after::text FROM audit_auditevent"
            " WHERE id = %s",
            [new_id],
        )
        seq, prev_hash, hash_, before_text, after_text = cursor.fetchone()
    read = {
        **row,
        "seq": seq,
        "prev_hash": prev_hash,
        "hash": hash_,
        "before": None if before_text is None else json.loads(before_text),
        "after": None if after_text is None else json.loads(after_text),
    }
    with_stored_texts(read, {"before": before_text, "after": after_text})
    assert content_matches(read), "the hash is of the texts the row holds"
    return before_text, after_text
