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
from django.db import DatabaseError, connection, transaction

from oversight.agents.models import AgentToken
from oversight.gateway import record_sql
from oversight.gateway.models import Action
from tests.gateway.helpers import decide, refund

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class _Calls:
    """Each decision_record call's parameters and answer, and how far the WAL was flushed
    right after it returned (read on the same connection; a read writes no WAL)."""

    def __init__(self) -> None:
        self.params: list[list[Any]] = []
        self.answers: list[tuple[Any, ...]] = []
        self.flushed_after: list[str] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if sql == record_sql.CALL_SQL:
            self.params.append(list(params))
            self.answers.append(result)
            self.flushed_after.append(_one("SELECT pg_current_wal_flush_lsn()::text"))
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
        session_setting = _one("SHOW synchronous_commit")
    assert action.status == "allowed"
    assert calls.params[-1][-1] is True  # its own transaction: commits without waiting
    # The record the procedure wrote after the decision's commit, in a transaction that
    # waited for its flush, was flushed when the statement returned: so was the decision.
    durable_lsn = calls.answers[-1][-1]
    assert durable_lsn is not None
    assert _at_or_after(calls.flushed_after[-1], str(durable_lsn))
    assert session_setting == "on"  # the session's own setting is left as it was


def test_inside_a_transaction_the_decision_commits_with_it(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    token, _ = prod_token
    calls = _Calls()
    with connection.execute_wrapper(calls), transaction.atomic():
        action = decide(token, refund(100))
        transaction.set_rollback(True)
    assert calls.params[-1][-1] is False
    assert calls.answers[-1][0] == "recorded"
    assert calls.answers[-1][-1] is None  # nothing committed or waited for in the CALL
    assert not Action.objects.filter(pk=action.pk).exists()  # it went with the caller's


def test_asked_to_commit_inside_a_callers_transaction_it_refuses_and_writes_nothing(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    """p_commit_async is only for a CALL that is its own transaction: inside another,
    PostgreSQL refuses the procedure's COMMIT, so a caller's half-done work is never
    committed by a decision."""
    token, _ = prod_token
    calls = _Calls()
    with connection.execute_wrapper(calls), transaction.atomic():
        decide(token, refund(100))
        transaction.set_rollback(True)
    action = json.loads(calls.params[-1][0])
    action["id"] = str(uuid.uuid4())
    again = [json.dumps(action), *calls.params[-1][1:-1], True]
    with (
        pytest.raises(DatabaseError, match="invalid transaction termination"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(record_sql.CALL_SQL, again)
    assert not Action.objects.filter(pk=action["id"]).exists()


def test_only_a_call_asked_to_turns_off_waiting_for_its_flush(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    """The procedure turns synchronous_commit off for its own transaction, and only when
    asked (p_commit_async). Seen inside a caller's transaction, through a call whose
    credentials are stale: it commits nothing, so asking is not refused there."""
    token, _ = prod_token
    calls = _Calls()
    with connection.execute_wrapper(calls), transaction.atomic():
        decide(token, refund(100))
        transaction.set_rollback(True)
    params = calls.params[-1]
    for commit_async, expected in ((True, "off"), (False, "on")):
        action = json.loads(params[0])
        action["id"] = str(uuid.uuid4())
        stale = [json.dumps(action), *params[1:-2], "not the fingerprint", commit_async]
        with transaction.atomic():
            _one("SELECT set_config('synchronous_commit', 'on', true)")
            with connection.cursor() as cursor:
                cursor.execute(record_sql.CALL_SQL, stale)
                assert cursor.fetchone()[0] == "stale"
            assert _one("SHOW synchronous_commit") == expected
            transaction.set_rollback(True)
        assert not Action.objects.filter(pk=action["id"]).exists()
