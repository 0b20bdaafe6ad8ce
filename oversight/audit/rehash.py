"""PostgreSQL rehashes events from their columns, so whole-log verification does not pull
every event's content into Python (docs/decisions/0019-the-database-rehashes-events.md).

The canonical line of an event (verifier.canonical_json) is rebuilt in SQL from the
columns, field by field in the verifier's key order, and hashed with PostgreSQL's sha256.
This only ever says "this row hashes to its ``hash``": a row it cannot vouch for (one
written before before/after were kept as their canonical text, or one that was changed)
is checked by the verifier's own rules in Python, which decide. tests/audit/test_rehash.py
holds the SQL line equal to the verifier's for awkward values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
from django.db import connection, models, transaction

from oversight.audit.fields import CanonicalJSONField
from oversight.audit.models import AuditEvent
from oversight.audit.verifier import HASHED_FIELDS
from oversight.lib.prefetch import prefetched

_TIME = "'\"' || to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || '\"'"


# Characters JSON escapes in a string (PostgreSQL text has no NUL): control characters,
# the quote and the backslash. A row whose strings have none is written without to_json.
_NEEDS_ESCAPE = "'[\\x01-\\x1f\"\\\\]'"


def _value_sql(name: str, *, plain: bool) -> str:
    """The canonical text of one column; ``plain``: its strings need no escaping."""
    field = AuditEvent._meta.get_field(name)
    column = connection.ops.quote_name(field.column)
    if isinstance(field, models.DateTimeField):
        return _TIME.format(column=column)
    if isinstance(field, CanonicalJSONField | models.IntegerField):  # kept as written
        return f"coalesce({column}::text, 'null')"
    if isinstance(field, models.CharField):
        return f"'\"' || {column} || '\"'" if plain else f"to_json({column})::text"
    raise TypeError(f"no canonical SQL for {name} ({type(field).__name__})")


def _line(*, plain: bool) -> str:
    parts = []
    for index, name in enumerate(sorted(HASHED_FIELDS)):
        key = ("{" if index == 0 else ",") + json.dumps(name) + ":"
        parts.append(f"'{key}' || {_value_sql(name, plain=plain)}")
    return " || ".join([*parts, "'}'"])


def canonical_line_sql() -> str:
    """An SQL expression giving each row's canonical line (a text). Escaping every string
    with to_json is most of the work, and almost no row needs it: one test of all the
    row's strings picks the plain form when none does."""
    strings = [
        connection.ops.quote_name(AuditEvent._meta.get_field(name).column)
        for name in sorted(HASHED_FIELDS)
        if isinstance(AuditEvent._meta.get_field(name), models.CharField)
    ]
    return (
        f"CASE WHEN concat({', '.join(strings)}) ~ {_NEEDS_ESCAPE} "
        f"THEN {_line(plain=False)} ELSE {_line(plain=True)} END"
    )


def _select_sql(where: str) -> str:
    line = canonical_line_sql()
    return (
        "SELECT seq, prev_hash, hash, "  # noqa: S608 (no outside input)
        f"encode(sha256(convert_to({line}, 'UTF8')), 'hex') = hash, "
        # The Merkle leaf (verifier.leaf_hash): RFC 9162's 0x00 and the event's hash; none
        # for a hash that is not one (a row written by hand): the verifier names it.
        "CASE WHEN hash ~ '^[0-9a-f]{64}$' THEN sha256('\\x00'::bytea || decode(hash, 'hex')) END "
        f"FROM audit_auditevent {where} ORDER BY seq"
    )


def rows_rehashed(batch_size: int) -> Iterator[tuple[int, str, str, bool, bytes]]:
    """(seq, prev_hash, hash, whether the database found the row hashing to ``hash``, its
    Merkle leaf hash) of every event in order.

    Outside a transaction, ranges of ``batch_size`` events are rehashed ahead of the
    reader on ``WORKERS`` connections of their own, so the database works on every core
    while Python walks the chain; inside one (whose uncommitted events other connections
    cannot see), on this connection, from a server-side cursor."""
    if connection.in_atomic_block:
        yield from _on_this_connection(batch_size)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(seq), max(seq) FROM audit_auditevent")
        first, last = cursor.fetchone()
    if first is None:
        return
    ranges = [(start, start + batch_size) for start in range(first, last + 1, batch_size)]
    sql = _select_sql("WHERE seq >= %s AND seq < %s")
    for rows in prefetched(ranges, lambda bounds: _fetch_all(sql, bounds), WORKERS):
        yield from rows


WORKERS = 3


def _fetch_all(sql: str, params: Any) -> list[tuple[Any, ...]]:
    """Whole-table work: not bound by the statement timeout meant for requests."""
    connection.ensure_connection()
    # Binary results (the seq, the flag and the leaf come without text conversion), which
    # psycopg gives on its own cursor, not Django's client-side one; same transaction.
    with transaction.atomic(), psycopg.Cursor(connection.connection) as raw:
        raw.execute("SET LOCAL statement_timeout = 0")
        raw.execute(sql, params, binary=True)
        return raw.fetchall()


def _on_this_connection(batch_size: int) -> Iterator[tuple[int, str, str, bool, bytes]]:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")
        raw: Any = connection.connection
        with raw.cursor(name="audit_rehash") as cursor:
            cursor.itersize = batch_size
            cursor.execute(_select_sql(""))
            yield from cursor
