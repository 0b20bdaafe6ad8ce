"""The agent says its caller was told how an action ended without running
(POST /api/v1/actions/<id>/acknowledge): recorded once and audited; refused for an action
that may still run or ran."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.services import agent_access_grant
from oversight.approvals.services import approval_vote
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, RefundPolicy, api_error, expire, refund

pytestmark = pytest.mark.django_db


def _acknowledge(api: AgentApi, action_id: str) -> Any:
    return api.post(f"/actions/{action_id}/acknowledge", {})


def _rejected(api: AgentApi, agent: Any, reviewer: Any) -> dict[str, Any]:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    held = api.decide(refund(900))
    approval_vote(user=reviewer, action_id=held["id"], vote="deny", comment="not today")
    return held


def test_a_rejected_action_is_acknowledged_once_and_audited(
    api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any
) -> None:
    held = _rejected(api, agent, reviewer)
    first = _acknowledge(api, held["id"])
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "rejected" and body["acknowledged_at"] is not None
    again = _acknowledge(api, held["id"]).json()
    assert again["acknowledged_at"] == body["acknowledged_at"]  # as first recorded
    event = AuditEvent.objects.get(verb="action.acknowledged")
    assert event.actor_label == "agent:refund-bot" and event.target_id == held["id"]
    assert event.after["status"] == "rejected"
    assert api.get(f"/actions/{held['id']}").json()["acknowledged_at"] == body["acknowledged_at"]


def test_a_held_action_past_its_deadline_is_expired_then_acknowledged(
    api: AgentApi, policy: RefundPolicy
) -> None:
    held = api.decide(refund(900))
    expire(Action.objects.get(pk=held["id"]))
    body = _acknowledge(api, held["id"]).json()
    assert body["status"] == "expired" and body["acknowledged_at"] is not None


@pytest.mark.parametrize("amount", [10, 900])
def test_an_action_that_may_still_run_is_not_acknowledged(
    api: AgentApi, policy: RefundPolicy, amount: int
) -> None:
    decision = api.decide(refund(amount))  # allowed, or held
    error = api_error(_acknowledge(api, decision["id"]), 409, "not_ended")
    assert "Only an action that ended without running can be acknowledged" in error["message"]
    assert Action.objects.get(pk=decision["id"]).acknowledged_at is None
    assert not AuditEvent.objects.filter(verb="action.acknowledged").exists()


def test_an_action_that_ran_is_not_acknowledged(api: AgentApi, policy: RefundPolicy) -> None:
    allowed = api.decide(refund(10))
    api.post(f"/actions/{allowed['id']}/result", {"outcome": "succeeded"})
    error = api_error(_acknowledge(api, allowed["id"]), 409, "not_ended")
    assert "this one's status is succeeded" in error["message"]


def test_another_agents_action_is_not_found(
    api: AgentApi, other_api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any
) -> None:
    held = _rejected(api, agent, reviewer)
    api_error(_acknowledge(other_api, held["id"]), 404, "not_found")
    assert Action.objects.get(pk=held["id"]).acknowledged_at is None


def test_the_actions_page_says_the_agent_was_told(
    client: Client, api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any, owner: Any
) -> None:
    held = _rejected(api, agent, reviewer)
    client.force_login(owner)
    url = reverse("approvals:action", args=[held["id"]])
    assert "The agent was told" not in client.get(url).content.decode()
    _acknowledge(api, held["id"])
    page = client.get(url).content.decode()
    assert "<dt>The agent was told</dt>" in page
    assert "action.acknowledged" in page  # in its story
    assert "The agent told its caller: Denied by a reviewer" in page
