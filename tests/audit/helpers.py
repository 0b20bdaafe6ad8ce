from __future__ import annotations

from django.db import connection, transaction

from oversight.audit.actors import Actor
from oversight.audit.db_roles import has_owner_database, owner_cursor
from oversight.audit.services import audit_record
from oversight.audit.triggers import IMMUTABLE_TRIGGERS, TABLE


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
