"""Stopping actions that have not run: by the agent, and by a kill switch."""

from __future__ import annotations

from typing import Any

import pytest

from oversight.agents.services import agent_access_grant
from oversight.approvals.services import approval_vote
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.models import LimitCounter
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, RefundPolicy, api_error, limit_create, refund

pytestmark = pytest.mark.django_db


def _cancel(api: AgentApi, action_id: str) -> Any:
    return api.post(f"/actions/{action_id}/cancel", {})


def test_the_agent_cancels_a_held_action_and_its_quota_is_released(
    api: AgentApi, policy: RefundPolicy, agent: Any
) -> None:
    limit_create(agent=agent, max_count=5)
    held = api.decide(refund(900))
    assert LimitCounter.objects.get().count == 1
    response = _cancel(api, held["id"])
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert LimitCounter.objects.get().count == 0
    event = AuditEvent.objects.get(verb="action.cancelled")
    assert event.actor_label == "agent:refund-bot" and event.before == {"status": "pending"}


def test_an_approved_action_that_has_not_run_can_be_cancelled(
    api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    held = api.decide(refund(900))
    approval_vote(user=reviewer, action_id=held["id"], vote="approve")
    assert _cancel(api, held["id"]).json()["status"] == "cancelled"


def test_a_cancel_for_pending_only_leaves_an_approved_action_to_run(
    api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any
) -> None:
    """The SDK's give-up when its wait ran out: a person who approved in that very
    moment wins, and the agent is told to run it."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    approved, pending = api.decide(refund(900)), api.decide(refund(901))
    approval_vote(user=reviewer, action_id=approved["id"], vote="approve")
    refused = api.post(f"/actions/{approved['id']}/cancel?pending_only=true", {})
    error = api_error(refused, 409, "not_cancellable")
    assert error["message"] == (
        "An action that is approved cannot be cancelled while only a pending one is (pending_only)."
    )
    assert Action.objects.get(pk=approved["id"]).status == "approved"
    assert not AuditEvent.objects.filter(verb="action.cancelled").exists()
    cancelled = api.post(f"/actions/{pending['id']}/cancel?pending_only=true", {})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize("amount", [10, 900])
def test_an_action_that_ran_or_was_allowed_outright_is_not_cancellable(
    api: AgentApi, policy: RefundPolicy, amount: int
) -> None:
    decision = api.decide(refund(amount))
    if decision["status"] == "pending":
        _cancel(api, decision["id"])  # first cancel wins, the second is refused
    error = api_error(_cancel(api, decision["id"]), 409, "not_cancellable")
    assert "cannot be cancelled" in error["message"]


def test_another_agents_action_cannot_be_cancelled(
    api: AgentApi, other_api: AgentApi, policy: RefundPolicy
) -> None:
    held = api.decide(refund(900))
    api_error(_cancel(other_api, held["id"]), 404, "not_found")
    assert Action.objects.get(pk=held["id"]).status == "pending"


@pytest.mark.parametrize("scope", ["global", "team:payments", "agent:refund-bot"])
def test_engaging_a_kill_switch_cancels_what_has_not_run_in_its_scope(
    api: AgentApi, other_api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any, scope: str
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    held = api.decide(refund(900))
    approved = api.decide(refund(901, charges=("ch_2",)))
    approval_vote(user=reviewer, action_id=approved["id"], vote="approve")
    allowed = api.decide(refund(10))  # may be running right now: not touched

    killswitch_engage(actor=SYSTEM, target=parse_target(scope), reason="incident 7")

    assert Action.objects.get(pk=held["id"]).status == "cancelled"
    assert Action.objects.get(pk=approved["id"]).status == "cancelled"
    assert Action.objects.get(pk=allowed["id"]).status == "allowed"
    assert AuditEvent.objects.filter(verb="action.cancelled").count() == 2
    error = Action.objects.get(pk=held["id"]).error
    assert "incident 7" in error
    # Named as people name them: "agent Refund bot", "team payments", "everything".
    named = {"global": "everything", "team:payments": "team payments"}
    assert f"kill switch for {named.get(scope, 'agent Refund bot')}:" in error


def test_a_kill_switch_leaves_other_teams_actions_alone(
    api: AgentApi, policy: RefundPolicy, other_agent: Any
) -> None:
    held = api.decide(refund(900))
    killswitch_engage(actor=SYSTEM, target=parse_target("agent:email-campaigner"), reason="x")
    assert Action.objects.get(pk=held["id"]).status == "pending"


def test_a_replay_answers_with_the_first_decision(
    api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    first = api.post("/actions", refund(900), HTTP_IDEMPOTENCY_KEY="k-1").json()
    approval_vote(user=reviewer, action_id=first["id"], vote="approve")
    replay = api.post("/actions", refund(900), HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.status_code == 200
    assert replay.json()["status"] == "pending"  # the same answer; GET shows it was approved
    assert api.get(f"/actions/{first['id']}").json()["status"] == "approved"


def test_wait_accepts_fractions_of_a_second(api: AgentApi, policy: RefundPolicy) -> None:
    held = api.decide(refund(900))
    response = api.get(f"/actions/{held['id']}?wait=0.3")
    assert response.status_code == 200 and response.json()["status"] == "pending"
