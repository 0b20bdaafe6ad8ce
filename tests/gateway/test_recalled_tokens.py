"""The decision fast lane recalls a token it authenticated before, without a query, and a
decision made from it is written only if nothing it was made from changed since.

auth.py keeps what it authenticated; the pipeline's record step compares the kept token's
fingerprint with the database's in the statement that writes the decision
(credentials_sql.py, gateway/sql/decision_record.v7.sql). These tests change each thing a
decision depends on between the requests, and require the next answer to follow it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from oversight.agents.models import AgentToken
from oversight.agents.services import agent_update, token_revoke
from oversight.audit.db_roles import owner_cursor
from oversight.gateway import auth, fastlane, record_sql
from oversight.gateway.exceptions import UnauthenticatedError
from oversight.gateway.models import Action
from oversight.gateway.pipeline import ActionInput, Credentials, decide
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.models import Rule
from oversight.policy.services import policy_object_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, fast_lane_decide, refund

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _nothing_kept() -> Iterator[None]:
    auth._kept.clear()
    yield
    auth._kept.clear()


def _data(amount: int = 100) -> ActionInput:
    return ActionInput(**refund(amount))


def _lane(raw: str, amount: int = 100) -> Any:
    return fast_lane_decide(raw, refund(amount))


def _decide(raw: str, amount: int = 100) -> tuple[int, dict[str, Any]]:
    outcome = _lane(raw, amount)
    assert isinstance(outcome, tuple), outcome
    return outcome


def _kept(token: AgentToken, raw: str) -> AgentToken:
    """Authenticate until the token is kept."""
    for _ in range(2):
        auth.token_authenticate(raw, keep=True)
        recalled = auth.token_recall(raw)
        if recalled is not None:
            return recalled
    raise AssertionError("the token was not kept")


@pytest.mark.postgres
def test_a_recalled_token_decides_in_one_statement_which_waits_for_its_flush(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    token, raw = prod_token
    _kept(token, raw)
    _decide(raw)  # compiles and caches the policy
    with CaptureQueriesContext(connection) as queries:
        status, answer = _decide(raw)
    assert (status, answer["status"]) == (201, "allowed")
    (written,) = (q["sql"] for q in queries.captured_queries)
    assert written == record_sql.CALL_SQL
    assert auth.token_recall(raw) is not None


def test_a_token_is_kept_with_its_use_recorded(prod_token: tuple[AgentToken, str]) -> None:
    token, raw = prod_token
    assert token.last_used_at is None
    auth.token_authenticate(raw, keep=True)  # touches last_used_at, not in the fingerprint
    kept = auth.token_recall(raw)
    assert kept is not None
    token.refresh_from_db()
    assert kept.last_used_at == token.last_used_at is not None
    assert kept.fingerprint == auth.credentials_fingerprint(token.token_hash)


def test_a_token_unused_for_a_minute_is_authenticated_again(
    prod_token: tuple[AgentToken, str],
) -> None:
    token, raw = prod_token
    kept = _kept(token, raw)
    kept.last_used_at = timezone.now() - dt.timedelta(seconds=61)
    assert auth.token_recall(raw) is None
    assert auth.token_recall(raw) is None  # and it was dropped


def test_a_revoked_token_is_read_again_and_refused_with_nothing_written(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    token, raw = prod_token
    recalled = _kept(token, raw)
    token_revoke(actor=SYSTEM, token=token)
    with pytest.raises(UnauthenticatedError):
        decide(credentials=Credentials.of(recalled), data=_data())
    assert not Action.objects.exists()
    assert auth.token_recall(raw) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda token: token_revoke(actor=SYSTEM, token=token),
            (401, "unauthorized"),
            id="revoked-401",
        ),
        pytest.param(
            lambda token: agent_update(actor=SYSTEM, agent=token.agent, status="paused"),
            (403, "agent_unavailable"),
            id="paused-403",
        ),
    ],
)
def test_a_token_refused_since_is_refused_at_its_next_request(
    prod_token: tuple[AgentToken, str], policy: Any, change: Any, expected: tuple[int, str]
) -> None:
    token, raw = prod_token
    _kept(token, raw)
    assert _decide(raw)[1]["status"] == "allowed"
    change(token)
    answer = _lane(raw)  # the kept copy is stale
    assert isinstance(answer, HttpResponse)
    assert (answer.status_code, json.loads(answer.content)["error"]["code"]) == expected
    with pytest.raises(fastlane._HandOver):  # then Django's handler answers, as at first
        _lane(raw)
    assert Action.objects.count() == 1
    assert auth.token_recall(raw) is None


def test_a_kill_switch_halts_the_next_decision(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    token, raw = prod_token
    _kept(token, raw)
    killswitch_engage(actor=SYSTEM, target=parse_target("global"), reason="stop")
    assert _decide(raw)[1]["status"] == "halted"


def test_a_policy_edit_applies_to_the_next_decision(
    prod_token: tuple[AgentToken, str], policy: Any, agent: Any
) -> None:
    token, raw = prod_token
    _kept(token, raw)
    first = _decide(raw)[1]
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(agent=agent, name="no refunds today", effect="forbid", action=REFUND),
    )
    second = _decide(raw)[1]
    assert (first["status"], second["status"]) == ("allowed", "denied")
    assert second["policy_version"] > first["policy_version"]
    assert "no refunds today" in [reason["name"] for reason in second["reasons"]]


def test_a_new_owner_is_the_next_decisions_owner(
    prod_token: tuple[AgentToken, str], policy: Any, agent: Any, teammate: Any
) -> None:
    token, raw = prod_token
    _kept(token, raw)
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=agent,
            name="only the teammate's refunds",
            effect="forbid",
            action=REFUND,
            condition=f"agent.owner != '{teammate.username}'",
        ),
    )
    _kept(token, raw)
    assert _decide(raw)[1]["status"] == "denied"
    agent_update(actor=SYSTEM, agent=agent, owner=teammate)
    assert _decide(raw)[1]["status"] == "allowed"


def test_a_kept_token_decides_on_every_database_and_a_change_is_followed(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    token, raw = prod_token
    _kept(token, raw)
    assert _decide(raw)[1]["status"] == "allowed"
    killswitch_engage(actor=SYSTEM, target=parse_target("global"), reason="stop")
    assert _decide(raw)[1]["status"] == "halted"  # the write checked the kept copy


@contextmanager
def _table_missing(table: str) -> Iterator[None]:
    """A real database failure: the table is renamed away, then back (by its owner)."""
    with owner_cursor(fallback=connection) as cursor:
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_away"')
    try:
        yield
    finally:
        with owner_cursor(fallback=connection) as cursor:
            cursor.execute(f'ALTER TABLE "{table}_away" RENAME TO "{table}"')


def _failed(raw: str) -> dict[str, Any]:
    outcome = _lane(raw)
    assert isinstance(outcome, HttpResponse), outcome
    assert outcome.status_code == 500
    return json.loads(outcome.content)


@pytest.mark.postgres
def test_a_database_failure_while_authenticating_is_an_error_never_an_allow(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    _token, raw = prod_token
    with _table_missing(AgentToken._meta.db_table):
        body = _failed(raw)
    assert body["error"]["code"] == "internal_error"
    assert "do not act" in body["error"]["message"]
    assert not Action.objects.exists()


@pytest.mark.postgres
def test_a_database_failure_while_writing_a_recalled_decision_is_an_error_never_an_allow(
    prod_token: tuple[AgentToken, str], policy: Any
) -> None:
    token, raw = prod_token
    _kept(token, raw)
    _decide(raw)
    with _table_missing(Action._meta.db_table):
        body = _failed(raw)
    assert body["error"]["code"] == "internal_error"
    assert Action.objects.count() == 1  # the first decision only
    assert _decide(raw)[1]["status"] == "allowed"  # and the next one is decided again


@pytest.mark.postgres
def test_a_runaway_agent_over_its_limit_costs_one_evaluation_and_two_writes(
    prod_token: tuple[AgentToken, str], policy: Any, agent: Any, monkeypatch: Any
) -> None:
    """The record step reports the exceeded limit; the pipeline writes the denial without
    evaluating the policy again (it used to evaluate three times)."""
    from oversight.policy.engine import CompiledPolicy
    from tests.gateway.helpers import limit_create

    limit_create(agent=agent, max_count=1, on_exceed="deny")
    token, raw = prod_token
    _kept(token, raw)
    assert _decide(raw)[1]["status"] == "allowed"  # the one allowed; the policy is cached
    evaluations = []
    real_decide = CompiledPolicy.decide

    def counted(self: CompiledPolicy, request: Any) -> Any:
        evaluations.append(request)
        return real_decide(self, request)

    monkeypatch.setattr(CompiledPolicy, "decide", counted)
    with CaptureQueriesContext(connection) as queries:
        status, answer = _decide(raw)
    assert (status, answer["status"]) == (201, "denied")
    assert [r["kind"] for r in answer["reasons"]][-1] == "limit"
    assert len(evaluations) == 1
    # The attempt that found the limit exceeded (it wrote nothing), then the denial (which
    # the same statement waits for until durable).
    sent = [q["sql"] for q in queries.captured_queries]
    assert sent == [record_sql.CALL_SQL, record_sql.CALL_SQL]
