"""An outcome report is read, checked, then written by one statement that checks what may
have changed since (gateway/outcomes.py, the procedure ``action_report``): the token's
credentials, which the fast lane may have kept from a decision, and the action's status.

Against the real ASGI server and PostgreSQL, in autocommit as in production.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oversight.agents.models import AgentToken
from oversight.agents.services import token_revoke
from oversight.approvals.services import approval_vote
from oversight.audit.models import AuditEvent
from oversight.audit.verification import audit_chain_verify
from oversight.gateway.auth import token_authenticate
from oversight.gateway.lifecycle import ResultInput, action_report_result
from oversight.gateway.models import Action
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from tests.conftest import SYSTEM
from tests.gateway_live.conftest import LiveAgent

pytestmark = [pytest.mark.postgres]


def _decided(live: LiveAgent, charge: str, amount: int = 100) -> dict[str, Any]:
    body = {"action": "payments.refund", "resource": f"stripe:charge/{charge}"}
    body["params"] = {"amount": amount}
    response = httpx.post(live.url + "/api/v1/actions", json=body, headers=live.headers)
    assert response.status_code == 201, response.text
    return response.json()


def _report(live: LiveAgent, action_id: str, **fields: Any) -> httpx.Response:
    body = {"outcome": "succeeded", "after": {"refunded": 100}, **fields}
    path = f"{live.url}/api/v1/actions/{action_id}/result"
    return httpx.post(path, json=body, headers=live.headers, timeout=30)


def _reported_events(action_id: str) -> int:
    return AuditEvent.objects.filter(verb="action.reported", target_id=action_id).count()


def test_a_token_revoked_after_its_decision_cannot_report(live_agent: LiveAgent) -> None:
    """The server kept the token from the decision; the report's write finds it revoked."""
    decided = _decided(live_agent, "ch_1")
    token_revoke(actor=SYSTEM, token=AgentToken.objects.get(agent=live_agent.agent))
    response = _report(live_agent, decided["id"])
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert Action.objects.get(pk=decided["id"]).status == "allowed"
    assert _reported_events(decided["id"]) == 0


def test_a_kill_switch_engaged_after_the_decision_does_not_lose_the_report(
    live_agent: LiveAgent,
) -> None:
    """The action ran before the switch: what it did is recorded (credentials read again)."""
    decided = _decided(live_agent, "ch_1")
    killswitch_engage(actor=SYSTEM, target=parse_target("global"), reason="incident")
    response = _report(live_agent, decided["id"])
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    action = Action.objects.get(pk=decided["id"])
    assert (action.status, action.after) == ("succeeded", {"refunded": 100})
    assert _reported_events(decided["id"]) == 1
    halted = httpx.post(
        live_agent.url + "/api/v1/actions",
        json={"action": "payments.refund", "resource": "stripe:charge/ch_2", "params": {}},
        headers=live_agent.headers,
    )
    assert halted.json()["status"] == "halted"


def test_reports_of_one_action_at_once_record_one(live_agent: LiveAgent) -> None:
    decided = _decided(live_agent, "ch_1")
    answers = _at_once(
        *(partial(_report, live_agent, decided["id"], after={"by": n}) for n in range(8))
    )
    assert sorted(answers) == [200] + [409] * 7
    action = Action.objects.get(pk=decided["id"])
    event = AuditEvent.objects.get(verb="action.reported", target_id=decided["id"])
    assert action.status == "succeeded"
    assert action.after == event.after["state"] in [{"by": n} for n in range(8)]
    assert audit_chain_verify()[1] is None


def _at_once(*calls: Callable[[], httpx.Response]) -> list[int]:
    """Each call in its own thread, released together; their status codes, in order."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> int:
        start.wait(timeout=10)
        return call().status_code

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_a_report_and_a_cancellation_at_once_one_wins(live_agent: LiveAgent) -> None:
    """An approved action that has not run yet: its agent reports it and gives it up at
    the same moment, many times over; each time exactly one of the two is recorded."""
    reviewer = get_user_model().objects.get(username="standby1")
    for n in range(6):
        held = _decided(live_agent, f"ch_{n}", amount=900)
        assert held["status"] == "pending"
        approval_vote(user=reviewer, action_id=held["id"], vote="approve")
        cancel = f"{live_agent.url}/api/v1/actions/{held['id']}/cancel"
        answers = _at_once(
            partial(_report, live_agent, held["id"]),
            partial(httpx.post, cancel, headers=live_agent.headers, timeout=30),
        )
        assert sorted(answers) == [200, 409], answers
        status = Action.objects.get(pk=held["id"]).status
        assert status == ("succeeded" if answers[0] == 200 else "cancelled")
        assert _reported_events(held["id"]) == (1 if status == "succeeded" else 0)
    assert audit_chain_verify()[1] is None


def test_a_report_is_one_read_and_one_statement(live_agent: LiveAgent) -> None:
    decided = _decided(live_agent, "ch_1")
    token = token_authenticate(live_agent.token)
    assert token is not None
    data = ResultInput(outcome="succeeded", after={"refunded": 100})
    with CaptureQueriesContext(connection) as queries:
        action_report_result(token=token, action_id=decided["id"], data=data)
    statements = [query["sql"].split()[0].upper() for query in queries]
    assert statements == ["SELECT", "CALL"], [query["sql"][:80] for query in queries]
    assert Action.objects.get(pk=decided["id"]).status == "succeeded"
    assert _reported_events(decided["id"]) == 1
