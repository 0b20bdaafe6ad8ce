"""A decision thread keeps its database connection from one decision to the next, and
gives back one that a database error or an open transaction left unfit
(fastlane._connection_kept)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, connection

from oversight.agents.models import AgentToken
from oversight.gateway import auth, fastlane
from tests.gateway.helpers import fast_lane_decide, refund

pytestmark = [pytest.mark.django_db(transaction=True)]


def _decide(raw: str, amount: int) -> tuple[int, dict[str, Any]]:
    outcome = fast_lane_decide(raw, refund(amount))
    assert isinstance(outcome, tuple), outcome
    return outcome


@pytest.fixture(autouse=True)
def _nothing_kept() -> Any:
    auth._kept.clear()
    yield
    auth._kept.clear()


def test_the_next_decision_uses_the_same_connection(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    _token, raw = prod_token
    assert _decide(raw, 100)[1]["status"] == "allowed"
    used = connection.connection
    assert used is not None
    assert _decide(raw, 101)[1]["status"] == "allowed"
    assert connection.connection is used


@pytest.mark.postgres  # an in-memory SQLite database is never closed
def test_a_connection_that_saw_a_database_error_is_given_back(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    _token, raw = prod_token
    _decide(raw, 100)
    broken = connection.connection
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert connection.errors_occurred
    status, answer = _decide(raw, 101)
    assert (status, answer["status"]) == (201, "allowed")
    assert connection.connection is not broken
    assert not connection.errors_occurred


@pytest.mark.postgres
def test_a_connection_left_in_a_transaction_is_not_decided_on() -> None:
    connection.ensure_connection()
    connection.set_autocommit(False)  # as a decision cut off in its transaction would leave it
    fastlane._connection_kept()
    assert connection.connection is None
    connection.ensure_connection()  # the next decision connects afresh, in autocommit
    assert connection.get_autocommit()
