"""The zero-install SQLite file: a reader never holds up a decision's commit.

Two connections of Django's own SQLite backend, opened with the project's options
(`SQLITE_OPTIONS`) on a file of their own, whichever database the suite runs on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.utils import ConnectionHandler

# Short enough to fail quickly where the commit would wait for the reader.
_BUSY_TIMEOUT = 0.5


def test_a_commit_does_not_wait_for_a_reader(tmp_path: Path, django_db_blocker: Any) -> None:
    options = {**settings.SQLITE_OPTIONS, "timeout": _BUSY_TIMEOUT}
    database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(tmp_path / "oversight.sqlite3"),
        "OPTIONS": options,
    }
    handler = ConnectionHandler({"default": database, "reader": {**database}})
    writer, reader = handler["default"], handler["reader"]
    with django_db_blocker.unblock():
        try:
            with writer.cursor() as cursor:
                cursor.execute("CREATE TABLE action (n integer)")
                cursor.executemany("INSERT INTO action (n) VALUES (%s)", [(n,) for n in range(100)])
            with reader.cursor() as reading:
                # A page part-way through its rows: the statement, and its read, stay open.
                reading.execute("SELECT n FROM action ORDER BY n")
                assert reading.fetchone() == (0,)

                started = time.monotonic()
                with writer.cursor() as cursor:  # a decision's transaction, as Django begins it
                    cursor.execute("BEGIN IMMEDIATE")
                    cursor.execute("INSERT INTO action (n) VALUES (100)")
                    cursor.execute("COMMIT")
                assert time.monotonic() - started < _BUSY_TIMEOUT

                # The reader goes on with what it started from, then sees the new row.
                assert len(reading.fetchall()) == 99
            with reader.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM action")
                assert cursor.fetchone() == (101,)
        finally:
            handler.close_all()
