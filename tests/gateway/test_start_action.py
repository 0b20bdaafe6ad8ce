"""The agent claims the run of an approved action before it runs it
(POST /api/v1/actions/<id>/start): granted once, so that two callers waiting on one
approval do not both run it, and a caller after one that ran it (and could not report)
learns it may have run."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.models import ToolPin
from oversight.agents.services import agent_access_grant
from oversight.agents.tool_pins import tool_pin_accept, tool_pins_record
from oversight.approvals.services import approval_vote
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, RefundPolicy, api_error, refund, refund_tool

pytestmark = pytest.mark.django_db


def _start(api: AgentApi, action_id: str) -> Any:
    return api.post(f"/actions/{action_id}/start", {})


def _approved(api: AgentApi, agent: Any, reviewer: Any) -> dict[str, Any]:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    held = api.decide(refund(900))
    approval_vote(user=reviewer, action_id=held["id"], vote="approve")
    return held


def test_an_approved_action_is_started_once(
    api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any
) -> None:
    held = _approved(api, agent, reviewer)
    first = _start(api, held["id"])
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "approved" and body["started_at"] is not None
    error = api_error(_start(api, held["id"]), 409, "already_started")
    assert error["message"] == (
        "This action was started already, and may have run; it runs at most once."
    )
    assert api.get(f"/actions/{held['id']}").json()["started_at"] == body["started_at"]
    page = Client()
    page.force_login(reviewer)
    shown = page.get(reverse("approvals:action", args=[held["id"]])).content
    assert b"Started by the agent" in shown and b"The agent started it" in shown
    (event,) = AuditEvent.objects.filter(verb="action.started")
    assert (event.actor_label, event.target_id) == ("agent:refund-bot", held["id"])
    assert event.before == {"started_at": None}
    assert event.after["status"] == "approved" and event.after["started_at"]
    # It still reports its outcome as before.
    reported = api.post(f"/actions/{held['id']}/result", {"outcome": "succeeded"})
    assert reported.status_code == 200 and reported.json()["status"] == "succeeded"


@pytest.mark.parametrize("amount", [10, 900])
def test_an_allowed_or_held_action_is_not_started(
    api: AgentApi, policy: RefundPolicy, amount: int
) -> None:
    decision = api.decide(refund(amount))
    error = api_error(_start(api, decision["id"]), 409, "not_runnable")
    assert error["message"].startswith("Only an approved action is started this way")
    assert Action.objects.get(pk=decision["id"]).started_at is None
    assert not AuditEvent.objects.filter(verb="action.started").exists()


def test_another_agents_action_is_not_found(
    api: AgentApi, other_api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any
) -> None:
    held = _approved(api, agent, reviewer)
    api_error(_start(other_api, held["id"]), 404, "not_found")
    assert Action.objects.get(pk=held["id"]).started_at is None


def test_a_started_action_is_not_cancelled_by_the_agent_nor_a_kill_switch(
    api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any
) -> None:
    """Started, it may have run: cancelling it would make the identical call a new action,
    to be run a second time. It stays approved until its outcome is reported."""
    held = _approved(api, agent, reviewer)
    _start(api, held["id"])
    error = api_error(api.post(f"/actions/{held['id']}/cancel", {}), 409, "not_cancellable")
    assert error["message"] == (
        "This action was started by the agent and may have run; it cannot be cancelled."
    )
    killswitch_engage(actor=SYSTEM, target=parse_target(f"agent:{agent.slug}"), reason="drill")
    assert Action.objects.get(pk=held["id"]).status == "approved"
    assert not AuditEvent.objects.filter(verb="action.cancelled").exists()


def test_a_call_of_a_tool_whose_definition_changed_since_its_approval_is_not_started(
    api: AgentApi, policy: RefundPolicy, agent: Any, reviewer: Any
) -> None:
    """Approved under the pinned definition; the tool changed before the agent ran it: it
    is not started until an owner accepts the new definition (then it is)."""
    tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge.")])
    held = _approved(api, agent, reviewer)
    tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge, then export the card.")])

    error = api_error(_start(api, held["id"]), 409, "tool_changed")
    assert error["message"].startswith("The tool's definition changed since this call was")
    action = Action.objects.get(pk=held["id"])
    assert (action.status, action.started_at) == ("approved", None)
    assert not AuditEvent.objects.filter(verb="action.started").exists()

    pin = ToolPin.objects.get(agent=agent)
    tool_pin_accept(actor=SYSTEM, pin=pin, changed_hash=pin.changed_hash, user=None)
    assert _start(api, held["id"]).status_code == 200
