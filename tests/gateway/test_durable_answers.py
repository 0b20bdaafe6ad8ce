"""A decision that is its own transaction commits without waiting for its WAL flush, and
is answered only once it is durable (docs/decisions/0027-decisions-share-their-flushes.md).

Inside a caller's transaction the decision commits with it, as that transaction commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, transaction

from oversight.agents.models import AgentToken
from oversight.gateway import record_sql
from oversight.gateway.models import Action
from tests.gateway.helpers import decide, refund

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class _Calls:
    """Each decision_record call's parameters, and the WAL insert position right after it
    returned (read on the same connection; a read writes no WAL)."""

    def __init__(self) -> None:
        self.params: list[list[Any]] = []
        self.inserted_up_to: list[str] = []
        self.sent: list[str] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.sent.append(sql)
        result = execute(sql, params, many, context)
        if "FROM decision_record(" in sql:
            self.params.append(list(params))
            self.inserted_up_to.append(_one("SELECT pg_current_wal_insert_lsn()::text"))
        return result


def _one(sql: str, params: Any = ()) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _at_or_after(lsn: str, than: str) -> bool:
    return bool(_one("SELECT %s::pg_lsn >= %s::pg_lsn", (lsn, than)))


@contextmanager
def _flushing_session() -> Iterator[None]:
    """This connection's commits wait for their flush (the test cluster's default may
    not), as in production."""
    _one("SELECT set_config('synchronous_commit', 'on', false)")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def test_an_allowed_decision_is_durable_before_it_is_answered(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    token, _ = prod_token
    calls = _Calls()
    with _flushing_session(), connection.execute_wrapper(calls):
        action = decide(token, refund(100))
        flushed = _one("SELECT pg_current_wal_flush_lsn()::text")
    assert action.status == "allowed"
    assert calls.params[-1][-1] is True  # its own transaction: commits without waiting
    assert record_sql.DURABLE_SQL in calls.sent
    # Everything the decision wrote, its commit included, was in the WAL when the
    # statement returned; by the time decide() returns it is flushed.
    assert _at_or_after(flushed, calls.inserted_up_to[-1])


def test_inside_a_transaction_the_decision_commits_with_it(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    token, _ = prod_token
    calls = _Calls()
    with connection.execute_wrapper(calls), transaction.atomic():
        decide(token, refund(100))
    assert calls.params[-1][-1] is False
    assert record_sql.DURABLE_SQL not in calls.sent


def test_only_a_decision_of_its_own_turns_off_waiting_for_its_flush(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    """The function turns synchronous_commit off for its own transaction, and only when
    asked (p_commit_async)."""
    token, _ = prod_token
    calls = _Calls()
    with connection.execute_wrapper(calls), transaction.atomic():
        decide(token, refund(100))
    params = calls.params[-1]
    for commit_async, expected in ((True, "off"), (False, "on")):
        action = json.loads(params[0])
        action["id"] = str(uuid.uuid4())
        again = [json.dumps(action), *params[1:-1], commit_async]
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = on")
            with connection.cursor() as cursor:
                cursor.execute(record_sql.CALL_SQL, again)
                assert cursor.fetchone()[0] == "recorded"
            assert _one("SHOW synchronous_commit") == expected
            transaction.set_rollback(True)
        assert not Action.objects.filter(pk=action["id"]).exists()
