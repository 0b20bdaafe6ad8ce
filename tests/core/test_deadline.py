"""oversight/lib/deadline.py: statements keep to a deadline kept from another thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import OperationalError, connection

from oversight.lib import prepared
from oversight.lib.deadline import Deadline, DeadlineExceeded

pytestmark = pytest.mark.django_db


def test_no_statement_starts_after_the_deadline() -> None:
    deadline = Deadline(0)
    with deadline.statements():
        with pytest.raises(DeadlineExceeded), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        with pytest.raises(DeadlineExceeded):
            prepared.fetch_one("SELECT %s", [1])
    assert deadline.expire() is False  # it never touched the database
    assert prepared.fetch_one("SELECT %s", [1]) == (1,)  # only the work under the deadline


def test_work_within_its_time_runs_as_usual() -> None:
    deadline = Deadline(60)
    with deadline.statements():
        assert prepared.fetch_one("SELECT %s", [2]) == (2,)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 3")
            assert cursor.fetchone() == (3,)
    assert deadline.expire() is True  # it did touch it


def test_after_expire_no_further_statement_starts() -> None:
    deadline = Deadline(60)
    with deadline.statements():
        prepared.fetch_one("SELECT %s", [1])
        deadline.expire()
        with pytest.raises(DeadlineExceeded):
            prepared.fetch_one("SELECT %s", [1])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_expire_cancels_the_statement_in_flight_and_nothing_else() -> None:
    deadline = Deadline(60)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            with deadline.statements():
                started = time.monotonic()
                try:
                    prepared.fetch_one("SELECT pg_sleep(%s)", [10])
                except OperationalError as exc:
                    outcome["error"] = exc
                outcome["seconds"] = time.monotonic() - started
            # The same connection, no longer under the deadline: not hit by the cancel.
            outcome["after"] = prepared.fetch_one("SELECT %s", [7])
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.5)  # the statement is running
    assert deadline.expire() is True
    worker.join(10)

    assert "canceling statement due to user request" in str(outcome["error"])
    assert not isinstance(outcome["error"], DeadlineExceeded)
    assert outcome["seconds"] < 2
    assert outcome["after"] == (7,)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancel_sent_before_the_statement_reached_the_server_is_sent_again() -> None:
    """The race CI once lost: the statement is marked running, expire() cancels while its
    query is still on the way (the server ignores a cancel on an idle connection), and the
    query then waits unbounded. Here the query is held back past the first cancel."""
    deadline = Deadline(60)
    outcome: dict[str, Any] = {}

    def late(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        time.sleep(0.3)  # marked running, not yet sent
        return execute(sql, params, many, context)

    def work() -> None:
        try:
            with deadline.statements(), connection.execute_wrapper(late):
                started = time.monotonic()
                try:
                    prepared.fetch_one("SELECT pg_sleep(%s)", [10])
                except OperationalError as exc:
                    outcome["error"] = exc
                outcome["seconds"] = time.monotonic() - started
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    while deadline._running is None:
        time.sleep(0.005)
    started = time.monotonic()
    assert deadline.expire() is True
    expired_in = time.monotonic() - started
    worker.join(10)

    assert "canceling statement due to user request" in str(outcome["error"])
    assert outcome["seconds"] < 2
    assert expired_in < 2  # it returned once the statement had ended
