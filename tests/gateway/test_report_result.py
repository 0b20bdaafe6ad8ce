"""POST /api/v1/actions/{id}/result: the agent reports what happened, once, for exactly the
action that was decided."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import agent_access_grant, token_revoke
from oversight.approvals.services import approval_vote
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway import outcomes
from oversight.gateway.auth import token_authenticate
from oversight.gateway.exceptions import UnauthenticatedError
from oversight.gateway.lifecycle import ResultInput, action_report_result
from oversight.gateway.models import Action
from oversight.gateway.outcomes import OutcomeWrite, outcome_write
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, AgentApi, RefundPolicy, api_error, refund

pytestmark = pytest.mark.django_db

AFTER = {"refunded": 120, "charge": "ch_1"}


def _report(api: AgentApi, action_id: str, **fields: Any) -> Any:
    return api.post(f"/actions/{action_id}/result", {"outcome": "succeeded", **fields})


def test_a_success_is_recorded_with_the_after_state(
    api: AgentApi, policy: RefundPolicy, agent: Agent
) -> None:
    decision = api.decide(refund(120, before={"refunded": 0}))
    response = _report(api, decision["id"], after=AFTER)

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"]) == (decision["id"], "succeeded")
    assert body["finished_at"] is not None
    action = Action.objects.get(pk=decision["id"])
    assert (action.status, action.after, action.error) == ("succeeded", AFTER, "")
    event = AuditEvent.objects.get(verb="action.reported")
    assert (event.actor_label, event.agent_id, event.target_id) == (
        "agent:refund-bot",
        agent.pk,
        decision["id"],
    )
    assert event.before == {"status": "allowed", "state": {"refunded": 0}}
    assert event.after == {"status": "succeeded", "state": AFTER, "error": ""}


def test_a_failure_is_recorded_with_its_error(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund())
    response = api.post(
        f"/actions/{decision['id']}/result", {"outcome": "failed", "error": "card expired"}
    )
    assert response.json()["status"] == "failed"
    action = Action.objects.get(pk=decision["id"])
    assert (action.status, action.error, action.after) == ("failed", "card expired", None)


def test_reporting_twice_is_409(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund())
    _report(api, decision["id"], after=AFTER)
    error = api_error(_report(api, decision["id"], after={"other": 1}), 409, "already_reported")

    assert "already reported" in error["message"]
    assert Action.objects.get(pk=decision["id"]).after == AFTER
    assert AuditEvent.objects.filter(verb="action.reported").count() == 1


def _pending(api: AgentApi, staging_api: AgentApi) -> dict[str, Any]:
    return api.decide(refund(600))


def _denied(api: AgentApi, staging_api: AgentApi) -> dict[str, Any]:
    return api.decide(refund(charges=("ch_1", "ch_2")))


def _halted(api: AgentApi, staging_api: AgentApi) -> dict[str, Any]:
    killswitch_engage(actor=SYSTEM, target=parse_target("global"), reason="incident")
    return api.decide(refund())


def _dry_run(api: AgentApi, staging_api: AgentApi) -> dict[str, Any]:
    return staging_api.decide(refund())


@pytest.mark.parametrize(
    ("status", "make"),
    [("pending", _pending), ("denied", _denied), ("halted", _halted), ("dry_run", _dry_run)],
    ids=["pending", "denied", "halted", "dry_run"],
)
def test_an_action_that_may_not_run_cannot_be_reported(
    api: AgentApi,
    staging_api: AgentApi,
    policy: RefundPolicy,
    status: str,
    make: Callable[[AgentApi, AgentApi], dict[str, Any]],
) -> None:
    decision = make(api, staging_api)
    assert decision["status"] == status
    reporter = staging_api if status == "dry_run" else api

    error = api_error(_report(reporter, decision["id"], after=AFTER), 409, "not_runnable")
    assert status in error["message"]
    action = Action.objects.get(pk=decision["id"])
    assert (action.status, action.after) == (status, None)
    assert not AuditEvent.objects.filter(verb="action.reported").exists()


@pytest.mark.parametrize(
    "claimed",
    [
        {"action": "payments.charge"},
        {"resource": "stripe:charge/ch_2"},
        {"params": {"amount": 1200, "charges": ["ch_1"]}},
        {"params": {"amount": 120}},
    ],
    ids=["other-action", "other-resource", "other-params", "fewer-params"],
)
def test_a_result_for_something_else_than_was_decided_is_409(
    api: AgentApi, policy: RefundPolicy, claimed: dict[str, Any]
) -> None:
    decision = api.decide(refund(120))
    error = api_error(_report(api, decision["id"], **claimed), 409, "action_mismatch")
    assert "different action" in error["message"]
    assert Action.objects.get(pk=decision["id"]).status == "allowed"


def test_a_result_for_exactly_what_was_decided_is_recorded(
    api: AgentApi, policy: RefundPolicy
) -> None:
    decision = api.decide(refund(120))
    same = {
        "action": REFUND,
        "resource": "stripe:charge/ch_1",
        "params": {"charges": ["ch_1"], "amount": 120},  # key order does not matter
    }
    response = _report(api, decision["id"], after=AFTER, **same)
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


def test_another_agents_action_is_404(
    api: AgentApi, other_api: AgentApi, policy: RefundPolicy
) -> None:
    theirs = api.decide(refund())
    error = api_error(_report(other_api, theirs["id"], after=AFTER), 404, "not_found")
    assert error["message"] == "No such action."
    assert Action.objects.get(pk=theirs["id"]).status == "allowed"


def test_an_unknown_outcome_is_422(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund())
    response = api.post(f"/actions/{decision['id']}/result", {"outcome": "maybe"})
    error = api_error(response, 422, "validation_error")
    assert list(error["fields"]) == ["outcome"]
    assert Action.objects.get(pk=decision["id"]).status == "allowed"


def test_an_approved_action_can_be_reported(
    api: AgentApi, policy: RefundPolicy, agent: Agent, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    decision = api.decide(refund(600))
    approval_vote(user=reviewer, action_id=decision["id"], vote="approve")

    response = _report(api, decision["id"], after=AFTER, params=refund(600)["params"])
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    event = AuditEvent.objects.get(verb="action.reported")
    assert event.before["status"] == "approved"


def test_an_approved_action_cannot_be_run_with_other_params(
    api: AgentApi, policy: RefundPolicy, agent: Agent, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    decision = api.decide(refund(600))
    approval_vote(user=reviewer, action_id=decision["id"], vote="approve")

    api_error(_report(api, decision["id"], params=refund(6000)["params"]), 409, "action_mismatch")
    assert Action.objects.get(pk=decision["id"]).status == "approved"


def test_reporting_needs_a_token(anonymous_api: AgentApi, api: AgentApi, policy: Any) -> None:
    decision = api.decide(refund())
    api_error(_report(anonymous_api, decision["id"]), 401, "unauthorized")


def _write(api: AgentApi, action_id: str, **changes: Any) -> tuple[str, OutcomeWrite]:
    """The write of a success report of ``action_id`` as the service builds it, with
    ``changes`` to what it was built from; what the write found."""
    token = token_authenticate(api.raw or "")
    assert token is not None
    action = Action.objects.get(pk=action_id)
    read_status = changes.pop("from_status", action.status)
    action.status, action.after, action.finished_at = "succeeded", AFTER, timezone.now()
    audit = {
        "actor": Actor.for_agent(token.agent),
        "verb": "action.reported",
        "target": ("gateway.action", action_id, "a refund"),
        "agent_id": token.agent_id,
    }
    write = OutcomeWrite(
        action=action,
        from_status=read_status,
        audit=audit,
        token_hash=token.token_hash,
        fingerprint=changes.pop("fingerprint", token.fingerprint),
    )
    return outcome_write(write), write


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ({"from_status": "approved"}, outcomes.CHANGED),  # another report got there first
        ({"fingerprint": "read-before-a-revoke"}, outcomes.STALE),
    ],
)
def test_a_write_that_finds_something_changed_since_writes_nothing(
    api: AgentApi, policy: RefundPolicy, change: dict[str, str], found: str
) -> None:
    decision = api.decide(refund())
    events = AuditEvent.objects.count()
    assert _write(api, decision["id"], **change)[0] == found
    action = Action.objects.get(pk=decision["id"])
    assert (action.status, action.after, action.finished_at) == ("allowed", None, None)
    assert AuditEvent.objects.count() == events


def test_a_write_as_read_is_recorded(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund())
    assert _write(api, decision["id"])[0] == outcomes.RECORDED
    action = Action.objects.get(pk=decision["id"])
    assert (action.status, action.after) == ("succeeded", AFTER)
    assert AuditEvent.objects.filter(verb="action.reported", target_id=decision["id"]).count() == 1


def test_a_report_with_a_token_read_before_a_kill_switch_is_recorded(
    api: AgentApi, policy: RefundPolicy, prod_token: tuple[AgentToken, str]
) -> None:
    """The service reads changed credentials again: the switch halts decisions, not the
    record of what already ran."""
    decision = api.decide(refund())
    token = token_authenticate(prod_token[1])
    assert token is not None
    killswitch_engage(actor=SYSTEM, target=parse_target("global"), reason="incident")
    data = ResultInput(outcome="succeeded", after=AFTER)
    assert action_report_result(token=token, action_id=decision["id"], data=data).status == (
        "succeeded"
    )
    assert Action.objects.get(pk=decision["id"]).status == "succeeded"


def test_a_report_with_a_token_revoked_since_it_was_read_is_refused(
    api: AgentApi, policy: RefundPolicy, prod_token: tuple[AgentToken, str]
) -> None:
    decision = api.decide(refund())
    token = token_authenticate(prod_token[1])
    assert token is not None
    token_revoke(actor=SYSTEM, token=prod_token[0])
    data = ResultInput(outcome="succeeded", after=AFTER)
    with pytest.raises(UnauthenticatedError):
        action_report_result(token=token, action_id=decision["id"], data=data)
    assert Action.objects.get(pk=decision["id"]).status == "allowed"
