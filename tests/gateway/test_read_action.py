"""GET /api/v1/actions/{id}: an agent reads its own action, long-polls a held one, and sees
a held action nobody decided in time as expired."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from django.db import connection

from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import agent_access_grant
from oversight.approvals.services import approval_vote
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.policy.models import LimitCounter
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, RefundPolicy, api_error, expire, limit_create, refund
from tests.servers import asgi_server

pytestmark = pytest.mark.django_db

ACTION_FIELDS = {
    "id",
    "status",
    "reasons",
    "policy_version",
    "release",
    "reversibility",
    "expires_at",
    "request_id",
    "action",
    "resource",
    "params",
    "approvals_required",
    "edited",
    "requested_params",
    "votes",
    "created_at",
    "finished_at",
    "acknowledged_at",
    "started_at",
    "error",
    "reports_outcome",
    "resource_params",
}


def _timed_get(api: AgentApi, path: str) -> tuple[Any, float]:
    started = time.monotonic()
    response = api.get(path)
    return response, time.monotonic() - started


def test_an_agent_reads_its_own_action(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund(600))
    response = api.get(f"/actions/{decision['id']}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == ACTION_FIELDS
    assert {key: body[key] for key in decision} == decision
    assert body["status"] == "pending"
    assert (body["action"], body["resource"]) == ("payments.refund", "stripe:charge/ch_1")
    assert body["params"] == {"amount": 600, "charges": ["ch_1"]}
    assert body["approvals_required"] == 1
    assert body["created_at"] and body["finished_at"] is None


def test_another_agents_action_and_an_unknown_id_look_the_same(
    api: AgentApi, other_api: AgentApi, policy: RefundPolicy
) -> None:
    theirs = other_api.decide(refund())
    not_theirs = api.get(f"/actions/{theirs['id']}")
    unknown = api.get(f"/actions/{uuid.uuid4()}")

    api_error(not_theirs, 404, "not_found")
    api_error(unknown, 404, "not_found")
    assert not_theirs.content == unknown.content


def test_a_malformed_id_is_422(api: AgentApi) -> None:
    error = api_error(api.get("/actions/not-a-uuid"), 422, "validation_error")
    assert list(error["fields"]) == ["action_id"]


def test_reading_needs_a_token(
    anonymous_api: AgentApi, api: AgentApi, policy: RefundPolicy
) -> None:
    decision = api.decide(refund())
    api_error(anonymous_api.get(f"/actions/{decision['id']}"), 401, "unauthorized")


def test_waiting_more_than_60_seconds_is_422(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund(600))
    error = api_error(api.get(f"/actions/{decision['id']}?wait=61"), 422, "validation_error")
    assert list(error["fields"]) == ["wait"]


def test_a_pending_action_is_polled_until_the_wait_is_over(
    api: AgentApi, policy: RefundPolicy
) -> None:
    decision = api.decide(refund(600))
    response, elapsed = _timed_get(api, f"/actions/{decision['id']}?wait=2")

    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert 1.9 <= elapsed < 3.5


def test_waiting_on_a_decided_action_answers_at_once(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund())
    response, elapsed = _timed_get(api, f"/actions/{decision['id']}?wait=5")
    assert response.json()["status"] == "allowed"
    assert elapsed < 1


def test_an_action_past_its_expiry_reads_expired_and_gives_back_its_quota(
    api: AgentApi, policy: RefundPolicy, agent: Agent
) -> None:
    limit_create(agent=agent, max_count=1)
    decision = api.decide(refund(600))
    assert LimitCounter.objects.get().count == 1
    expire(Action.objects.get(pk=decision["id"]))

    body = api.get(f"/actions/{decision['id']}").json()
    assert body["status"] == "expired"
    assert body["finished_at"] is not None
    event = AuditEvent.objects.get(verb="action.expired")
    assert (event.actor_label, event.target_id, event.agent_id) == (
        "system:expiry",
        decision["id"],
        agent.pk,
    )
    assert (event.before, event.after) == ({"status": "pending"}, {"status": "expired"})
    assert LimitCounter.objects.get().count == 0

    # Read again: still expired, and neither the event nor the release happens twice.
    assert api.get(f"/actions/{decision['id']}").json()["status"] == "expired"
    assert AuditEvent.objects.filter(verb="action.expired").count() == 1
    assert LimitCounter.objects.get().count == 0
    assert api.decide(refund())["status"] == "allowed"


def test_an_action_before_its_expiry_stays_pending(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund(600))
    assert api.get(f"/actions/{decision['id']}").json()["status"] == "pending"
    assert not AuditEvent.objects.filter(verb="action.expired").exists()


@pytest.mark.postgres
def test_an_approval_during_a_long_poll_answers_well_before_the_wait_is_over(
    transactional_db: Any,
    prod_token: tuple[AgentToken, str],
    policy: RefundPolicy,
    agent: Agent,
    reviewer: Any,
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    headers = {"Authorization": f"Bearer {prod_token[1]}"}
    errors: list[BaseException] = []

    def approve_soon(action_id: str) -> None:
        try:
            time.sleep(1)
            approval_vote(user=reviewer, action_id=uuid.UUID(action_id), vote="approve")
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    with asgi_server() as base, httpx.Client(base_url=base, headers=headers, timeout=15) as http:
        created = http.post("/api/v1/actions", json=refund(600))
        assert created.status_code == 201
        action_id = created.json()["id"]
        assert created.json()["status"] == "pending"

        voter = threading.Thread(target=approve_soon, args=(action_id,))
        voter.start()
        started = time.monotonic()
        response = http.get(f"/api/v1/actions/{action_id}", params={"wait": 5})
        elapsed = time.monotonic() - started
        voter.join()

    assert errors == []
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert 0.9 <= elapsed < 3
