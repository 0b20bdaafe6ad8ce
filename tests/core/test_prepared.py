"""The decision path's prepared statements (oversight/lib/prepared.py)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from oversight.lib import prepared


@pytest.mark.django_db
def test_rows_come_back_as_through_django() -> None:
    assert prepared.fetch_one("SELECT %s + 1, %s", [41, "x"]) == (42, "x")
    assert prepared.fetch_all("SELECT %(n)s * 2 UNION ALL SELECT 7", {"n": 2}) == [(4,), (7,)]


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_prepares_the_statement_once_per_connection() -> None:
    sql = "SELECT %s::int * 3"
    assert [prepared.fetch_one(sql, [n]) for n in (1, 2, 3)] == [(3,), (6,), (9,)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["SELECT $1::int * 3%"],
        )
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(transaction=True)
def test_errors_are_djangos_and_the_transaction_rolls_back() -> None:
    with connection.cursor() as cursor:  # temporary: the runtime role creates no tables
        cursor.execute("CREATE TEMPORARY TABLE prepared_probe (id integer PRIMARY KEY)")
    try:
        with pytest.raises(IntegrityError), transaction.atomic():
            prepared.fetch_all("INSERT INTO prepared_probe VALUES (1) RETURNING id", [])
            prepared.fetch_all("INSERT INTO prepared_probe VALUES (1) RETURNING id", [])
        assert prepared.fetch_one("SELECT count(*) FROM prepared_probe", []) == (0,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE prepared_probe")


@pytest.mark.django_db
def test_statements_show_in_djangos_query_log() -> None:
    with CaptureQueriesContext(connection) as queries:
        prepared.fetch_one("SELECT %s * 5", [2])
    assert queries.captured_queries[-1]["sql"].startswith("SELECT ")  # SQLite fills in 2
    assert queries.captured_queries[-1]["sql"].endswith(" * 5")


@pytest.mark.django_db
def test_a_statement_that_fails_is_logged_like_one_that_succeeds() -> None:
    failing = "SELECT id FROM prepared_no_such_table WHERE id = %s"
    with CaptureQueriesContext(connection) as queries:
        prepared.fetch_one("SELECT %s * 5", [2])
        with pytest.raises(DatabaseError), transaction.atomic():
            prepared.fetch_one(failing, [1])
    logged = queries.captured_queries
    [succeeded] = [query for query in logged if query["sql"].endswith(" * 5")]
    [failed] = [query for query in logged if "prepared_no_such_table" in query["sql"]]
    assert set(failed) == set(succeeded)  # the same entry: sql, time (and prepared)
    assert float(failed["time"]) >= 0


@pytest.mark.postgres
@pytest.mark.django_db
def test_array_literals_come_back_as_the_values() -> None:
    import datetime as dt
    from decimal import Decimal

    when = dt.datetime(2026, 11, 24, 5, 30, tzinfo=dt.UTC)
    texts = ['say "hi"', "back\\slash", "a,b", "{braces}", "", "NULL", " spaced "]
    row = prepared.fetch_one(
        "SELECT %s::bigint[], %s::numeric[], %s::timestamptz[], %s::text[]",
        [
            prepared.array_literal([1, None, 3]),
            prepared.array_literal([Decimal("1.50"), Decimal("1E+2"), None]),
            prepared.array_literal([when]),
            prepared.array_literal(texts),
        ],
    )
    assert row == ([1, None, 3], [Decimal("1.50"), Decimal("100"), None], [when], texts)
    assert prepared.fetch_one("SELECT %s::int[]", [prepared.array_literal([])]) == ([],)
