from __future__ import annotations

from django.db import connection, transaction

from oversight.audit.actors import Actor
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
    """Run SQL as an attacker with direct database access would: around the trigger."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name in IMMUTABLE_TRIGGERS:
                cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {name}")
        cursor.execute(sql, params or [])
        if connection.vendor == "postgresql":
            for name in IMMUTABLE_TRIGGERS:
                cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {name}")
