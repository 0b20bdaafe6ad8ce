"""Django's flush, taught that the audit tables are append-only.

PostgreSQL refuses to empty the append-only tables (APPEND_ONLY_TABLES): the runtime
role may not TRUNCATE them, and their triggers refuse it even to their owner. Only where
AUDIT_FLUSH_ALLOWED is on (the test suite, which flushes between transactional tests)
does flush empty them: as the owner (DATABASE_OWNER_URL, on a connection of its own;
without one, the connection's role is taken to own them), with the tables' triggers
switched off for the flush's own transaction. Everywhere else flush fails with the
database's refusal.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.commands.flush import Command as DjangoFlush
from django.db import connections

from oversight.audit.append_only import APPEND_ONLY_TABLES
from oversight.audit.db_roles import ident, owner_cursor


class Command(DjangoFlush):
    def handle(self, **options: Any) -> None:
        connection = connections[options["database"]]
        if not (settings.AUDIT_FLUSH_ALLOWED and connection.vendor == "postgresql"):
            return super().handle(**options)
        # Django's flush decides what to empty and announces it (post_migrate); only where
        # its statements run changes, so its one step that runs them is redirected.
        ops = connection.ops
        ops.execute_sql_flush = lambda sql_list: _flush_as_owner(connection, sql_list)
        try:
            super().handle(**options)
        finally:
            del ops.execute_sql_flush
        return None


# The suite flushes between transactional tests, while work a test set off may still be
# finishing in another thread (a decision's effects run after its answer is sent): the
# runtime's lock timeout (DB_LOCK_TIMEOUT, 1 s) would fail the flush, and the next test
# with it; the flush waits longer for them to let go of its tables.
FLUSH_LOCK_TIMEOUT = "15s"


def _flush_as_owner(connection: Any, sql_list: list[str]) -> None:
    with owner_cursor(fallback=connection) as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{FLUSH_LOCK_TIMEOUT}'")
        cursor.execute(
            "SELECT array(SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL)",
            [list(APPEND_ONLY_TABLES)],
        )
        tables = [ident(table) for table in cursor.fetchone()[0]]
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for sql in sql_list:
            cursor.execute(sql)
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
