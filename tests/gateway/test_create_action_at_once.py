"""Every answer and record of the decision path again, written by one statement.

On PostgreSQL a decision is written by one statement, ``CALL decision_record``
(gateway/sql/decision_record.v7.sql); outside a transaction that statement is its own
transaction. The tests of test_create_action.py run inside a transaction; here each of
them runs again without one, as the server runs them.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction

from oversight.agents.models import AgentToken
from oversight.audit.models import AuditEvent
from oversight.audit.verification import audit_chain_verify
from oversight.gateway.models import Action
from oversight.policy.models import LimitCounter
from tests.gateway.helpers import decide, grant_refunds, limit_create, refund
from tests.gateway.test_create_action import *  # noqa: F403

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class _Statements:
    """The statements this connection sends that call ``function``. (Counted here, not in
    pg_stat_user_functions: that view counts every session on the database, and another
    one's late decision would be counted as this test's.)"""

    def __init__(self, function: str) -> None:
        self.function = f"{function}("
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += self.function in sql
        return execute(sql, params, many, context)


def _row(action: Action) -> dict[str, Any]:
    """What must not depend on the path that wrote it."""
    stored = Action.objects.get(pk=action.pk)
    skip = {"id", "created_at", "expires_at"}
    row = {f.attname: getattr(stored, f.attname) for f in Action._meta.concrete_fields}
    row = {name: value for name, value in row.items() if name not in skip}
    row["expires_at is set"] = stored.expires_at is not None
    row["before is NULL"] = Action.objects.filter(pk=action.pk, before__isnull=True).exists()
    event = AuditEvent.objects.get(verb="action.decided", target_id=str(action.pk))
    row["audit"] = (event.actor_label, event.agent_id, event.target_label, event.after)
    return row


def test_the_usual_case_is_one_statement_in_or_out_of_a_transaction(
    prod_token: tuple[AgentToken, str], policy: Any, agent: Any
) -> None:
    token, _ = prod_token
    limit_create(agent=agent, max_count=100, max_sum=100_000, sum_param="amount")
    bodies = [
        refund(100),  # allowed, both limits charged
        refund(900, before={"refunded": False}),  # held
        refund(100, charges=("ch_1", "ch_2")),  # forbidden: nothing charged
    ]
    for body in bodies:
        calls = _Statements("decision_record")
        with connection.execute_wrapper(calls):
            at_once = decide(token, body)
            assert calls.count == 1
            with transaction.atomic():  # inside a caller's transaction: the same statement
                inside = decide(token, body)
            assert calls.count == 2
        assert _row(at_once) == _row(inside), body
        assert at_once.limit_usage == Action.objects.get(pk=at_once.pk).limit_usage
    assert [a.status for a in Action.objects.order_by("created_at")] == [
        "allowed",
        "allowed",
        "pending",
        "pending",
        "denied",
        "denied",
    ]
    assert LimitCounter.objects.get().count == 4
    assert audit_chain_verify()[1] is None


def test_an_exceeded_limit_leaves_nothing_of_the_first_attempt(
    prod_token: tuple[AgentToken, str], policy: Any, agent: Any
) -> None:
    token, _ = prod_token
    limit_create(agent=agent, max_count=5, on_exceed="deny")
    limit_create(agent=agent, name="sum", max_sum=250, sum_param="amount", on_exceed="deny")
    statuses = [decide(token, refund(100)).status for _ in range(4)]
    assert statuses == ["allowed", "allowed", "denied", "denied"]
    counts = sorted(LimitCounter.objects.values_list("count", flat=True))
    assert counts == [2, 2]  # the refused attempts charged neither limit
    assert Action.objects.count() == AuditEvent.objects.filter(verb="action.decided").count() == 4
    assert audit_chain_verify()[1] is None


def test_over_a_hold_limit_a_second_statement_charges_the_other_limits(
    prod_token: tuple[AgentToken, str], agent: Any
) -> None:
    token, _ = prod_token
    grant_refunds(agent)
    limit_create(agent=agent, name="ask above 1", max_count=1, on_exceed="hold")
    cap = limit_create(agent=agent, name="never more than 2", max_count=2, on_exceed="deny")
    assert decide(token, refund()).status == "allowed"
    for expected in ("pending", "denied"):  # the second charges the cap; the third is over it
        calls = _Statements("decision_record")
        with connection.execute_wrapper(calls):
            assert decide(token, refund()).status == expected
        assert calls.count == 2
    assert LimitCounter.objects.get(limit=cap).count == 2
    assert audit_chain_verify()[1] is None
