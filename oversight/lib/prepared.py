"""Prepared statements for the few queries every agent action runs (PostgreSQL).

Django's psycopg cursors bind parameters on the client, so PostgreSQL parses and plans
each query again on every call: for the token lookup (a four-table join) planning costs
about seven times the execution. Here the query goes through a server-side-binding
cursor of the same connection with ``prepare=True``: psycopg prepares it once per
connection and afterwards sends only the parameters. Errors are Django's database errors,
as through ``connection.cursor()``; the statement runs in whatever transaction is open.

Elsewhere (SQLite) the query runs through Django's cursor. Either way statements go
through the connection's execute wrappers (``connection.execute_wrapper``) and show in
Django's query log (``connection.queries``) with their placeholders and time, failed
ones too.

Behind a pooler in transaction mode (pgbouncer) set ``DB_PREPARED=0``: the connection's
``prepare_threshold`` is then None and nothing is prepared (see settings.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


def _run(sql: str, params: Sequence[Any] | dict[str, Any], fetch: str) -> Any:
    # The thread's connection, looked up once: each ``django.db.connection.x`` is a
    # lookup of its own, and these statements run for every decision.
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if fetch == "one" else cursor.fetchall()
    import psycopg

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    cursor = psycopg.Cursor(connection.connection)

    def execute(sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        with connection.wrap_database_errors:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchone() if fetch == "one" else cursor.fetchall()

    # Django's execute wrappers apply as to its own cursors (a decision's deadline is one,
    # oversight/lib/deadline.py).
    for wrapper in reversed(connection.execute_wrappers):
        execute = functools.partial(wrapper, execute)
    started = time.monotonic()
    try:
        with cursor:
            return execute(sql, params, False, {"connection": connection, "cursor": cursor})
    finally:
        # Logged whether it succeeded or not, as Django's own cursors do: a statement that
        # failed (a lock timeout, say) is often the one someone is looking for.
        if connection.queries_logged:  # DEBUG, or a test capturing queries
            connection.queries_log.append(
                {"sql": sql, "time": f"{time.monotonic() - started:.3f}", "prepared": True}
            )


def fetch_one(sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple[Any, ...] | None:
    return _run(sql, params, "one")


def fetch_all(sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
    return _run(sql, params, "all")


def array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal for a parameter cast in the SQL (``%s::bigint[]``).

    psycopg adapts Python lists in Python, element by element, which costs more than the
    rest of a decision's parameters together; a literal is one string. Elements are
    quoted, None is NULL.
    """
    items = []
    for value in values:
        if value is None:
            items.append("NULL")
            continue
        text = value.isoformat() if isinstance(value, dt.datetime) else str(value)
        items.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(items) + "}"


Converters = list[tuple[int, list[Any], Any]]


def column_converters(fields: Sequence[Any]) -> Converters:
    """For rows of these model fields' columns, in order: per column that needs them, the
    database converters the ORM would apply (JSON, SQLite's UUIDs and dates...)."""
    connection = connections[DEFAULT_DB_ALIAS]
    found = []
    for index, field in enumerate(fields):
        expression = field.get_col(field.model._meta.db_table)
        converters = connection.ops.get_db_converters(expression) + field.get_db_converters(
            connection
        )
        if converters:
            found.append((index, converters, expression))
    return found


def converted(row: Sequence[Any], converters: Converters) -> list[Any]:
    """``row``'s values as the ORM would have them."""
    connection = connections[DEFAULT_DB_ALIAS]
    values = list(row)
    for index, functions, expression in converters:
        for convert in functions:
            values[index] = convert(values[index], expression, connection)
    return values
