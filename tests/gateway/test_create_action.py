"""POST /api/v1/actions: every answer of the decision path, its records, and its errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import (
    agent_access_grant,
    agent_create,
    agent_update,
    token_create,
    token_revoke,
)
from oversight.approvals.services import approval_vote
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.gateway.pipeline import ActionInput, request_body_hash
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage, killswitch_release
from oversight.policy.constants import DEFAULT_HOLD_SECONDS
from oversight.policy.models import Grant, LimitCounter, Rule
from oversight.policy.services import policy_object_create
from oversight.releases.services import release_record
from tests.conftest import SYSTEM
from tests.gateway.helpers import (
    REFUND,
    AgentApi,
    RefundPolicy,
    api_error,
    grant_refunds,
    hold_large_refunds,
    limit_create,
    refund,
)

pytestmark = pytest.mark.django_db

HOLD_AMOUNT = 600  # over the hold rule's 500


def _reason_names(body: dict[str, Any], kind: str) -> list[str]:
    return [reason["name"] for reason in body["reasons"] if reason["kind"] == kind]


def _expires_in(body: dict[str, Any]) -> float:
    expires_at = parse_datetime(body["expires_at"])
    assert expires_at is not None
    return (expires_at - timezone.now()).total_seconds()


def _encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _nothing_recorded() -> bool:
    return (
        not Action.objects.exists()
        and not AuditEvent.objects.filter(verb="action.decided").exists()
    )


# --- allowed -------------------------------------------------------------------------


def test_a_granted_refund_is_allowed_with_201(
    api: AgentApi, policy: RefundPolicy, agent: Agent
) -> None:
    body = refund(120, reason="ticket 481: double charge", before={"refunded": 0})
    response = api.post("/actions", body)

    assert response.status_code == 201
    decision = response.json()
    assert set(decision) == {
        "id",
        "status",
        "reasons",
        "policy_version",
        "release",
        "reversibility",
        "expires_at",
        "request_id",
    }
    assert decision["status"] == "allowed"
    assert decision["reversibility"] == "unknown"  # the grant says nothing
    assert decision["expires_at"] is None
    grant_reasons = [r for r in decision["reasons"] if r["kind"] == "grant"]
    assert grant_reasons == [
        {
            "kind": "grant",
            "id": policy.grant.pk,
            "name": "payments.refund on stripe:charge/*",
            "effect": "allow",
            "detail": "granted payments.refund on stripe:charge/*",
        }
    ]
    agent.refresh_from_db()
    assert decision["policy_version"] == agent.policy_version

    action = Action.objects.get()
    assert str(action.pk) == decision["id"]
    assert (action.agent, action.environment, action.status) == (agent, "production", "allowed")
    assert (action.action, action.resource) == (REFUND, "stripe:charge/ch_1")
    assert action.params == {"amount": 120, "charges": ["ch_1"]}
    assert action.before == {"refunded": 0}
    assert action.reason == "ticket 481: double charge"
    assert action.reasons == decision["reasons"]


def test_the_decision_is_audited_by_the_agent_with_the_request_id(
    api: AgentApi, policy: RefundPolicy, agent: Agent
) -> None:
    body = refund(120, reason="ticket 481", before={"refunded": 0})
    response = api.post("/actions", body)

    event = AuditEvent.objects.get(verb="action.decided")
    assert event.actor_label == "agent:refund-bot"
    assert event.actor_agent_id == agent.pk
    assert event.agent_id == agent.pk
    assert event.target_id == response.json()["id"]
    assert event.request_id == response["X-Request-ID"] != ""
    assert event.after["status"] == "allowed"
    assert event.after["params"] == body["params"]
    assert event.after["before"] == {"refunded": 0}
    assert event.after["reason"] == "ticket 481"
    assert event.after["environment"] == "production"


def test_a_well_formed_incoming_request_id_is_kept_in_the_audit_event(
    api: AgentApi, policy: RefundPolicy
) -> None:
    response = api.post("/actions", refund(), HTTP_X_REQUEST_ID="run-42.step-7")
    assert response["X-Request-ID"] == "run-42.step-7"
    assert AuditEvent.objects.get(verb="action.decided").request_id == "run-42.step-7"


# --- denied --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {**refund(), "action": "payments.charge"},
        {**refund(), "resource": "paypal:payment/p_1"},
    ],
    ids=["another-action", "another-resource"],
)
def test_without_a_matching_grant_the_action_is_denied_by_default(
    api: AgentApi, policy: RefundPolicy, body: dict[str, Any]
) -> None:
    decision = api.decide(body)
    assert decision["status"] == "denied"
    assert [(r["kind"], r["name"], r["effect"]) for r in decision["reasons"]] == [
        ("default", "no matching grant", "deny")
    ]
    assert Action.objects.get().status == "denied"
    assert AuditEvent.objects.get(verb="action.decided").after["status"] == "denied"


def test_an_agent_with_no_policy_at_all_is_denied(api: AgentApi) -> None:
    decision = api.decide(refund())
    assert decision["status"] == "denied"
    assert _reason_names(decision, "default") == ["no matching grant"]


def test_a_firing_forbid_denies(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund(50, charges=("ch_1", "ch_2")))
    assert decision["status"] == "denied"
    assert _reason_names(decision, "rule") == ["one charge at a time"]


def test_a_forbid_wins_over_a_hold(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund(900, charges=("ch_1", "ch_2")))
    assert decision["status"] == "denied"
    assert decision["expires_at"] is None
    assert Action.objects.get().approvals_required == 0


# --- held ----------------------------------------------------------------------------


def test_a_firing_hold_makes_the_action_pending(api: AgentApi, policy: RefundPolicy) -> None:
    decision = api.decide(refund(HOLD_AMOUNT))
    assert decision["status"] == "pending"
    assert _reason_names(decision, "rule") == ["large refunds"]
    assert DEFAULT_HOLD_SECONDS - 5 < _expires_in(decision) <= DEFAULT_HOLD_SECONDS
    action = Action.objects.get()
    assert action.approvals_required == policy.hold.approvals == 1
    assert action.expires_at is not None


def _hold_for_alert(agent: Agent) -> None:
    Agent.objects.filter(pk=agent.pk).update(hold_all=True, hold_all_reason="volume spike")


def test_an_agent_held_for_an_alert_has_every_allowed_action_held(
    api: AgentApi, agent: Agent, policy: RefundPolicy
) -> None:
    _hold_for_alert(agent)
    decision = api.decide(refund(50))
    assert decision["status"] == "pending"
    assert _reason_names(decision, "alert") == ["monitoring alert"]
    assert "volume spike" in decision["reasons"][-1]["detail"]
    assert DEFAULT_HOLD_SECONDS - 5 < _expires_in(decision) <= DEFAULT_HOLD_SECONDS
    assert Action.objects.get().approvals_required == 1


def test_an_alert_hold_never_turns_a_denial_into_a_hold(
    api: AgentApi, agent: Agent, policy: RefundPolicy
) -> None:
    _hold_for_alert(agent)
    assert api.decide(refund(50, charges=("ch_1", "ch_2")))["status"] == "denied"
    assert api.decide({"action": "crm.delete", "resource": "crm:x/1"})["status"] == "denied"


def test_on_staging_an_alert_hold_is_still_a_dry_run(
    staging_api: AgentApi, agent: Agent, policy: RefundPolicy
) -> None:
    _hold_for_alert(agent)
    decision = staging_api.decide(refund(50))
    assert decision["status"] == "dry_run"
    assert "would be held for approval" in decision["reasons"][-1]["detail"]


# --- halted --------------------------------------------------------------------------

SCOPES = ["global", "team:payments", "agent:refund-bot"]


@pytest.mark.parametrize("scope", SCOPES)
def test_an_engaged_kill_switch_halts_until_released(
    api: AgentApi, policy: RefundPolicy, scope: str
) -> None:
    killswitch_engage(actor=SYSTEM, target=parse_target(scope), reason="refund storm")
    decision = api.decide(refund())
    assert decision["status"] == "halted"
    assert [(r["kind"], r["effect"]) for r in decision["reasons"]] == [("killswitch", "halt")]
    [reason] = decision["reasons"]
    target = {"global": "everything", "team:payments": "payments", "agent:refund-bot": "Refund bot"}
    # Read after its name ("kill switch: engaged for ..."), not repeating it.
    assert reason["detail"] == f"engaged for {target[scope]}: refund storm"
    assert Action.objects.get().status == "halted"

    killswitch_release(actor=SYSTEM, target=parse_target(scope), reason="storm over")
    assert api.decide(refund())["status"] == "allowed"


def test_after_a_kill_switch_a_replayed_allow_nobody_reported_is_refused(
    api: AgentApi, policy: RefundPolicy
) -> None:
    """The caller asking again may be the one whose first answer was lost: it has not run
    the action, and must not run it once the switch is engaged."""
    allowed = api.decide(refund(100), HTTP_IDEMPOTENCY_KEY="k-1")
    reported = api.decide(refund(101), HTTP_IDEMPOTENCY_KEY="k-2")
    assert (
        api.post(f"/actions/{reported['id']}/result", {"outcome": "succeeded"}).status_code == 200
    )
    killswitch_engage(actor=SYSTEM, target=parse_target("global"), reason="refund storm")

    refused = api.post("/actions", refund(100), HTTP_IDEMPOTENCY_KEY="k-1")
    assert "do not run it" in api_error(refused, 409, "halted_since")["message"]
    again = api.post("/actions", refund(101), HTTP_IDEMPOTENCY_KEY="k-2")
    assert (again.status_code, again.json()["id"]) == (200, reported["id"])  # it ran
    assert Action.objects.count() == 2
    # What the first caller ran is still recorded.
    assert api.post(f"/actions/{allowed['id']}/result", {"outcome": "succeeded"}).status_code == 200

    killswitch_release(actor=SYSTEM, target=parse_target("global"), reason="storm over")
    replayed = api.post("/actions", refund(100), HTTP_IDEMPOTENCY_KEY="k-1")
    assert (replayed.status_code, replayed.json()["id"]) == (200, allowed["id"])


def test_a_halt_needs_no_policy_and_comes_before_it(api: AgentApi) -> None:
    killswitch_engage(actor=SYSTEM, target=parse_target("global"), reason="incident 12")
    assert api.decide(refund())["status"] == "halted"


def test_another_teams_kill_switch_does_not_halt(
    api: AgentApi, policy: RefundPolicy, other_team: Any
) -> None:
    killswitch_engage(actor=SYSTEM, target=parse_target("team:growth"), reason="their incident")
    assert api.decide(refund())["status"] == "allowed"


# --- staging -------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [100, HOLD_AMOUNT], ids=["would-allow", "would-hold"])
def test_a_staging_token_gets_a_dry_run_and_charges_no_limit(
    staging_api: AgentApi, policy: RefundPolicy, agent: Agent, amount: int
) -> None:
    limit_create(agent=agent, max_count=1)
    decision = staging_api.decide(refund(amount))
    assert decision["status"] == "dry_run"
    assert decision["expires_at"] is None
    assert _reason_names(decision, "environment") == ["staging"]
    [staging] = [r for r in decision["reasons"] if r["kind"] == "environment"]
    would_be = "allowed" if amount == 100 else "held for approval"
    assert staging["detail"] == f"recorded, not run (would be {would_be})"  # after "staging: "
    action = Action.objects.get()
    assert (action.environment, action.status, action.limit_usage) == ("staging", "dry_run", [])
    assert not LimitCounter.objects.exists()


def test_a_staging_token_never_reaches_the_agents_production_actions(
    api: AgentApi, staging_api: AgentApi, policy: RefundPolicy, agent: Agent, reviewer: Any
) -> None:
    """Staging decides and never executes: neither a replayed key nor an action's id gives
    a staging token a production action to run, read, start, cancel or report."""
    allowed = api.decide(refund(100), HTTP_IDEMPOTENCY_KEY="k-1")
    replay = staging_api.post("/actions", refund(100), HTTP_IDEMPOTENCY_KEY="k-1")
    api_error(replay, 409, "idempotency_key_reused")
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    held = api.decide(refund(HOLD_AMOUNT))
    approval_vote(user=reviewer, action_id=held["id"], vote="approve")
    for path, body in (
        (f"/actions/{held['id']}", None),
        (f"/actions/{held['id']}/start", {}),
        (f"/actions/{held['id']}/cancel", {}),
        (f"/actions/{allowed['id']}/result", {"outcome": "succeeded"}),
        (f"/actions/{held['id']}/acknowledge", {}),
    ):
        answer = staging_api.get(path) if body is None else staging_api.post(path, body)
        api_error(answer, 404, "not_found")
    assert Action.objects.get(pk=held["id"]).status == "approved"
    assert Action.objects.get(pk=allowed["id"]).status == "allowed"
    assert api.post(f"/actions/{held['id']}/start", {}).status_code == 200
    assert staging_api.decide(refund(100), HTTP_IDEMPOTENCY_KEY="k-2")["status"] == "dry_run"


def test_a_staging_token_still_gets_denials(staging_api: AgentApi, policy: RefundPolicy) -> None:
    assert staging_api.decide(refund(charges=("ch_1", "ch_2")))["status"] == "denied"


# --- 401 and 403 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwdw==", "Token {raw}", "Bearer ovs_prod_not-a-real-token", "Bearer "],
    ids=["no-header", "basic", "wrong-scheme", "unknown-token", "empty-token"],
)
def test_without_a_valid_bearer_token_it_is_401(
    anonymous_api: AgentApi,
    prod_token: tuple[AgentToken, str],
    policy: RefundPolicy,
    authorization: str | None,
) -> None:
    headers = {}
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization.format(raw=prod_token[1])
    error = api_error(anonymous_api.post("/actions", refund(), **headers), 401, "unauthorized")
    assert error["message"] == "Missing or unknown API token."
    assert _nothing_recorded()


def test_a_revoked_token_gets_401(
    api: AgentApi, prod_token: tuple[AgentToken, str], policy: RefundPolicy
) -> None:
    token_revoke(actor=SYSTEM, token=prod_token[0])
    api_error(api.post("/actions", refund()), 401, "unauthorized")
    assert _nothing_recorded()


@pytest.mark.parametrize("status", ["paused", "retired"])
def test_a_paused_or_retired_agent_gets_403(
    api: AgentApi, policy: RefundPolicy, agent: Agent, status: str
) -> None:
    agent_update(actor=SYSTEM, agent=agent, status=status)
    error = api_error(api.post("/actions", refund()), 403, "agent_unavailable")
    assert error["message"] == f"Agent refund-bot is {status}."
    assert _nothing_recorded()


# --- 422, 400, 413 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resource": "stripe:charge/ch_1"}, "action"),
        ({**refund(), "action": "Pay Refund"}, "action"),
        ({**refund(), "params": [100]}, "params"),
        ({**refund(), "params": "amount=100"}, "params"),
        ({**refund(), "resource": "stripe:charge/ch 1"}, "resource"),
        ({**refund(), "resource": "stripe:charge/ch_1 "}, "resource"),
        ({**refund(), "reason": "x" * 2001}, "reason"),
    ],
    ids=[
        "missing-action",
        "bad-action-name",
        "params-a-list",
        "params-a-string",
        "resource-with-space",
        "resource-trailing-space",
        "reason-too-long",
    ],
)
def test_invalid_input_is_422_naming_the_field(
    api: AgentApi, policy: RefundPolicy, body: dict[str, Any], field: str
) -> None:
    error = api_error(api.post("/actions", body), 422, "validation_error")
    assert list(error["fields"]) == [field]
    assert error["fields"][field]
    assert field in error["message"]
    assert _nothing_recorded()


def test_every_invalid_field_is_named_at_once(api: AgentApi) -> None:
    body = {"action": "Pay Refund", "resource": "a b", "params": [], "reason": "x" * 2001}
    error = api_error(api.post("/actions", body), 422, "validation_error")
    assert set(error["fields"]) == {"action", "resource", "params", "reason"}


def test_malformed_json_is_400(api: AgentApi, policy: RefundPolicy) -> None:
    error = api_error(api.post("/actions", '{"action": "payments.refund",'), 400, "bad_request")
    assert error["fields"] == {}
    assert _nothing_recorded()


def test_a_body_over_256_kib_is_413(api: AgentApi, policy: RefundPolicy) -> None:
    body = refund(reason="", before={"blob": "x" * (256 * 1024)})
    error = api_error(api.post("/actions", body), 413, "payload_too_large")
    assert "262144" in error["message"]
    assert _nothing_recorded()


def test_a_body_of_exactly_256_kib_is_decided(api: AgentApi, policy: RefundPolicy) -> None:
    body = refund(before={"blob": ""})
    body["before"]["blob"] = "x" * (256 * 1024 - len(_encoded(body)))
    assert len(_encoded(body)) == 256 * 1024
    assert api.decide(body)["status"] == "allowed"


# --- Idempotency-Key -----------------------------------------------------------------


def test_a_retry_with_the_same_key_and_body_gets_the_first_answer(
    api: AgentApi, policy: RefundPolicy
) -> None:
    first = api.post("/actions", refund(), HTTP_IDEMPOTENCY_KEY="refund-481")
    again = api.post("/actions", refund(), HTTP_IDEMPOTENCY_KEY="refund-481")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Action.objects.count() == 1
    assert AuditEvent.objects.filter(verb="action.decided").count() == 1


def test_a_retry_is_answered_with_the_request_id_of_the_ask_that_recorded_it(
    api: AgentApi, policy: RefundPolicy
) -> None:
    """Whoever sent that ask and never had its answer knows nobody was told to run it
    (the SDK's lost answers); an ask without an id of its own is given one."""
    first = api.post(
        "/actions", refund(), HTTP_IDEMPOTENCY_KEY="refund-482", HTTP_X_REQUEST_ID="ask-1"
    )
    again = api.post(
        "/actions", refund(), HTTP_IDEMPOTENCY_KEY="refund-482", HTTP_X_REQUEST_ID="ask-2"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["request_id"] == again.json()["request_id"] == "ask-1"
    assert again["X-Request-ID"] == "ask-2"
    assert Action.objects.get().request_id == "ask-1"

    unnamed = api.post("/actions", refund(130))
    assert unnamed.json()["request_id"] == unnamed["X-Request-ID"] != ""


def test_a_retry_of_a_held_action_does_not_reserve_quota_twice(
    api: AgentApi, policy: RefundPolicy, agent: Agent
) -> None:
    limit_create(agent=agent, max_count=5)
    first = api.post("/actions", refund(HOLD_AMOUNT), HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post("/actions", refund(HOLD_AMOUNT), HTTP_IDEMPOTENCY_KEY="k1")
    assert (first.json()["status"], again.json()["id"]) == ("pending", first.json()["id"])
    assert LimitCounter.objects.get().count == 1


def test_an_agent_may_say_it_reports_the_outcome_which_a_retry_does_not_change(
    api: AgentApi, policy: RefundPolicy
) -> None:
    """``reports_outcome`` is how the agent goes on, not what it asks: not part of what the
    Idempotency-Key binds, and false unless said (monitoring/unreported.py)."""
    said = api.post("/actions", refund(), HTTP_IDEMPOTENCY_KEY="k1")
    assert said.status_code == 201
    unsaid = api.decide(refund(reports_outcome=True))
    retried = api.post("/actions", refund(reports_outcome=True), HTTP_IDEMPOTENCY_KEY="k1")
    assert (retried.status_code, retried.json()["id"]) == (200, said.json()["id"])
    read = {
        a["id"]: a["reports_outcome"]
        for a in (api.get(f"/actions/{i}").json() for i in (said.json()["id"], unsaid["id"]))
    }
    assert read == {said.json()["id"]: False, unsaid["id"]: True}
    api_error(api.post("/actions", refund(reports_outcome="maybe")), 422, "validation_error")
    assert Action.objects.count() == 2


def test_an_agent_may_say_which_params_its_resource_is_made_of(
    api: AgentApi, policy: RefundPolicy
) -> None:
    """``resource_params`` (keys of params, approvals/edits.py keeps them) is kept and
    read back, audited, and, like ``reports_outcome``, not part of what the key binds; a
    name that is not a key of params locks nothing and is not kept; a name twice, or not a
    list of names, is refused with nothing recorded."""
    said = api.post("/actions", refund(resource_params=["charges"]), HTTP_IDEMPOTENCY_KEY="k1")
    assert said.status_code == 201, said.content
    retried = api.post("/actions", refund(), HTTP_IDEMPOTENCY_KEY="k1")
    assert (retried.status_code, retried.json()["id"]) == (200, said.json()["id"])
    unsaid = api.decide(refund())
    read = {
        a["id"]: a["resource_params"]
        for a in (api.get(f"/actions/{i}").json() for i in (said.json()["id"], unsaid["id"]))
    }
    assert read == {said.json()["id"]: ["charges"], unsaid["id"]: None}
    event = AuditEvent.objects.get(verb="action.decided", target_id=said.json()["id"])
    assert event.after["resource_params"] == ["charges"]
    typo = api.decide(refund(resource_params=["charge", "amount"]))
    assert api.get(f"/actions/{typo['id']}").json()["resource_params"] == ["amount"]
    for bad, says in (
        (["charges", "charges"], "a key is named twice"),
        ("charges", "validation"),
        ([7], "validation"),
    ):
        refused = api.post("/actions", refund(resource_params=bad))
        api_error(refused, 422, "validation_error")
        assert says in refused.content.decode(), refused.content
    assert Action.objects.count() == 3


def test_an_agent_may_say_which_release_its_session_runs(
    api: AgentApi, policy: RefundPolicy
) -> None:
    """``release`` (the version the session loaded; releases/assignment.py uses it only in
    a canary, tests/releases) is not part of what the key binds; without a rollout the
    stable release decides whatever is said; a version that is not a positive integer is
    refused with nothing recorded."""
    said = api.post("/actions", refund(release=1, session_id="s1"), HTTP_IDEMPOTENCY_KEY="k1")
    assert said.status_code == 201, said.content
    retried = api.post("/actions", refund(session_id="s1"), HTTP_IDEMPOTENCY_KEY="k1")
    assert (retried.status_code, retried.json()["id"]) == (200, said.json()["id"])
    stable = api.decide(refund(session_id="s1"))["release"]
    assert api.decide(refund(release=stable + 7, session_id="s1"))["release"] == stable
    assert api.decide(refund(release=2.0))["release"] == stable  # an integer, as JSON Schema says
    for bad in (0, -1, "2", 2.5, True, 2**31):
        api_error(api.post("/actions", refund(release=bad)), 422, "validation_error")
    assert Action.objects.count() == 4


def test_the_same_request_from_another_session_gets_the_first_answer(
    api: AgentApi, policy: RefundPolicy
) -> None:
    """``session_id`` is which session asks, not what it asks: an MCP proxy started anew
    (a new session) resends an identical call with the same key and must find its action
    (docs/integrations/mcp.md). The first action keeps its session."""
    said = api.post("/actions", refund(session_id="s1"), HTTP_IDEMPOTENCY_KEY="k1")
    assert said.status_code == 201, said.content
    for session in ("s2", ""):
        retried = api.post("/actions", refund(session_id=session), HTTP_IDEMPOTENCY_KEY="k1")
        assert (retried.status_code, retried.json()["id"]) == (200, said.json()["id"])
    assert Action.objects.get().session_id == "s1"
    other = api.post("/actions", refund(101, session_id="s1"), HTTP_IDEMPOTENCY_KEY="k1")
    api_error(other, 409, "idempotency_key_reused")
    assert Action.objects.count() == 1


def test_a_body_without_a_session_binds_its_key_as_it_always_has() -> None:
    """Keys stored before sessions stopped being bound still match their retries: the
    hash of a body without a session is the one the code before gave it."""
    data = ActionInput(
        action="payments.refund", resource="stripe:charge/ch_1", params={"amount": 5}
    )
    before = "46c58d439a185cc15a398ed73b9354c6b5df669f26fb0ad4ba6f4d7c3d41bcaf"
    assert request_body_hash(data) == before
    assert request_body_hash(dataclasses.replace(data, session_id="s1")) == before


def test_the_same_key_with_another_body_is_409_and_records_nothing(
    api: AgentApi, policy: RefundPolicy
) -> None:
    api.post("/actions", refund(100), HTTP_IDEMPOTENCY_KEY="refund-481")
    response = api.post("/actions", refund(101), HTTP_IDEMPOTENCY_KEY="refund-481")

    error = api_error(response, 409, "idempotency_key_reused")
    assert "Idempotency-Key" in error["message"]
    assert Action.objects.count() == 1
    assert AuditEvent.objects.filter(verb="action.decided").count() == 1


def test_without_a_key_a_repeat_is_a_new_action(api: AgentApi, policy: RefundPolicy) -> None:
    first, second = api.decide(refund()), api.decide(refund())
    assert first["id"] != second["id"]
    assert Action.objects.count() == 2


def test_an_idempotency_key_over_200_characters_is_422(api: AgentApi, policy: RefundPolicy) -> None:
    response = api.post("/actions", refund(), HTTP_IDEMPOTENCY_KEY="k" * 201)
    error = api_error(response, 422, "validation_error")
    assert list(error["fields"]) == ["Idempotency-Key"]
    assert _nothing_recorded()


# --- fail closed ---------------------------------------------------------------------


def test_a_forbid_that_does_not_compile_denies(
    api: AgentApi, policy: RefundPolicy, agent: Agent
) -> None:
    # As a hand edit in SQL would: no validation; the next release cut takes it in.
    Rule.objects.create(
        agent=agent, name="hand edit", effect="forbid", action=REFUND, condition="params.amount >"
    )
    release_record(actor=SYSTEM, agent=agent)
    decision = api.decide(refund(10))
    assert decision["status"] == "denied"
    assert "hand edit" in _reason_names(decision, "rule")
    assert "hand edit" in _reason_names(decision, "error")


def test_a_hand_edit_of_the_rows_is_not_in_force_until_a_release_takes_it_in(
    api: AgentApi, policy: RefundPolicy, agent: Agent
) -> None:
    Rule.objects.create(agent=agent, name="hand edit", effect="forbid", action=REFUND)
    assert api.decide(refund(10))["status"] == "allowed"
    release_record(actor=SYSTEM, agent=agent)
    assert api.decide(refund(10))["status"] == "denied"


def test_a_permit_that_does_not_compile_never_allows(api: AgentApi, agent: Agent) -> None:
    Rule.objects.create(
        agent=agent, name="hand permit", effect="permit", action=REFUND, condition="1 +"
    )
    release_record(actor=SYSTEM, agent=agent)
    decision = api.decide(refund(10))
    assert decision["status"] == "denied"
    assert _reason_names(decision, "default") == ["no matching grant"]


def test_a_hold_whose_condition_fails_at_run_time_holds(
    api: AgentApi, policy: RefundPolicy
) -> None:
    decision = api.decide(refund(amount=None))  # `params.amount` is missing
    assert decision["status"] == "pending"
    assert _reason_names(decision, "rule") == ["large refunds"]
    assert _reason_names(decision, "error") == ["large refunds"]


def test_a_hold_without_any_grant_denies(api: AgentApi, agent: Agent) -> None:
    hold_large_refunds(agent)
    decision = api.decide(refund(HOLD_AMOUNT))
    assert decision["status"] == "denied"
    assert _reason_names(decision, "default") == ["no matching grant"]
    assert Action.objects.get().approvals_required == 0


# --- limits --------------------------------------------------------------------------


def test_over_a_deny_limit_the_action_is_denied(api: AgentApi, agent: Agent) -> None:
    grant_refunds(agent)
    limit = limit_create(agent=agent, max_count=1, on_exceed="deny")

    assert api.decide(refund())["status"] == "allowed"
    decision = api.decide(refund())
    assert decision["status"] == "denied"
    assert [r for r in decision["reasons"] if r["kind"] == "limit"] == [
        {
            "kind": "limit",
            "id": limit.pk,
            "name": "refunds per hour",
            "effect": "deny",
            "detail": "over 1 actions per 3600s (agent)",
        }
    ]
    assert LimitCounter.objects.get().count == 1  # the denied one charged nothing


def test_over_a_hold_limit_the_action_is_held(api: AgentApi, agent: Agent) -> None:
    grant_refunds(agent)
    limit_create(agent=agent, max_count=1, on_exceed="hold")

    api.decide(refund())
    decision = api.decide(refund())
    assert decision["status"] == "pending"
    assert _reason_names(decision, "limit") == ["refunds per hour"]
    assert DEFAULT_HOLD_SECONDS - 5 < _expires_in(decision) <= DEFAULT_HOLD_SECONDS
    assert Action.objects.get(pk=decision["id"]).approvals_required == 1


def test_over_a_pause_limit_the_agent_is_paused_and_refused_next(
    api: AgentApi, agent: Agent
) -> None:
    grant_refunds(agent)
    limit_create(agent=agent, max_count=1, on_exceed="pause")

    api.decide(refund())
    decision = api.decide(refund())
    assert decision["status"] == "denied"
    assert _reason_names(decision, "limit") == ["refunds per hour"]
    agent.refresh_from_db()
    assert agent.status == "paused"
    paused = AuditEvent.objects.get(verb="agent.updated")
    assert paused.actor_label == "system:limits"
    assert (paused.before["status"], paused.after["status"]) == ("active", "paused")

    api_error(api.post("/actions", refund()), 403, "agent_unavailable")


@pytest.mark.parametrize(
    "amount",
    [None, "lots", "NaN", True, [100], {"value": 100}, -5],
    ids=["missing", "text", "nan", "bool", "list", "object", "negative"],
)
def test_a_sum_limit_whose_param_is_not_a_number_counts_as_exceeded(
    api: AgentApi, agent: Agent, amount: Any
) -> None:
    grant_refunds(agent)
    limit_create(agent=agent, name="refund total", sum_param="amount", max_sum=1000)

    decision = api.decide(refund(amount))
    assert decision["status"] == "denied"
    limit_reasons = [r for r in decision["reasons"] if r["kind"] == "limit"]
    why = "params.amount is missing, negative or not a number"
    assert [r["detail"] for r in limit_reasons] == [why]
    assert not LimitCounter.objects.filter(count__gt=0).exists()


def test_a_sum_limit_adds_up_the_amounts_in_its_window(api: AgentApi, agent: Agent) -> None:
    grant_refunds(agent)
    limit_create(agent=agent, name="refund total", sum_param="amount", max_sum=500)

    assert api.decide(refund(300))["status"] == "allowed"
    assert api.decide(refund(200))["status"] == "allowed"  # exactly at the maximum
    decision = api.decide(refund(1))
    assert decision["status"] == "denied"
    assert _reason_names(decision, "limit") == ["refund total"]


def test_a_team_limit_counts_the_teams_agents_together(
    client: Any, api: AgentApi, agent: Agent, team: Any, other_team: Any, owner: Any, outsider: Any
) -> None:
    def production_agent(slug: str, on_team: Any, by: Any) -> AgentApi:
        helper = agent_create(
            actor=SYSTEM,
            name=slug,
            slug=slug,
            purpose="Also refunds.",
            owner=by,
            team=on_team,
            environments=["production"],
        )
        grant_refunds(helper)
        return AgentApi(
            client, token_create(actor=SYSTEM, agent=helper, environment="production")[1]
        )

    grant_refunds(agent)
    teammate_bot = production_agent("refund-bot-2", team, owner)
    stranger_bot = production_agent("growth-bot", other_team, outsider)
    limit_create(team=team, name="team refunds", max_count=2)

    assert api.decide(refund())["status"] == "allowed"
    assert teammate_bot.decide(refund())["status"] == "allowed"
    assert stranger_bot.decide(refund())["status"] == "allowed"  # not on the team
    assert api.decide(refund())["status"] == "denied"
    assert teammate_bot.decide(refund())["status"] == "denied"
    assert stranger_bot.decide(refund())["status"] == "allowed"


def test_a_policy_edit_takes_effect_on_the_very_next_request(
    api: AgentApi, policy: RefundPolicy, agent: Agent
) -> None:
    first = api.decide(refund())
    assert first["status"] == "allowed"

    policy_object_create(
        actor=SYSTEM, obj=Rule(agent=agent, name="refunds frozen", effect="forbid", action=REFUND)
    )
    second = api.decide(refund())
    assert second["status"] == "denied"
    assert _reason_names(second, "rule") == ["refunds frozen"]
    assert second["policy_version"] == first["policy_version"] + 1


def test_a_held_action_reserves_quota_and_a_rejection_gives_it_back(
    api: AgentApi, policy: RefundPolicy, agent: Agent, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    limit_create(agent=agent, max_count=1)

    held = api.decide(refund(HOLD_AMOUNT))
    assert held["status"] == "pending"
    assert LimitCounter.objects.get().count == 1
    assert api.decide(refund(100))["status"] == "denied"  # the hold holds the only slot

    rejected = approval_vote(user=reviewer, action_id=held["id"], vote="deny", comment="too much")
    assert rejected.status == "rejected"
    assert LimitCounter.objects.get().count == 0
    assert api.decide(refund(100))["status"] == "allowed"


def test_an_approval_keeps_the_reserved_quota(
    api: AgentApi, policy: RefundPolicy, agent: Agent, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    limit_create(agent=agent, max_count=1)
    held = api.decide(refund(HOLD_AMOUNT))
    assert approval_vote(user=reviewer, action_id=held["id"], vote="approve").status == "approved"
    assert LimitCounter.objects.get().count == 1
    assert api.decide(refund(100))["status"] == "denied"


def _hold_above_1_never_more_than_2(agent: Agent) -> tuple[Any, Any]:
    """One refund an hour runs without asking, a second is held; never more than two."""
    grant_refunds(agent)
    ask = limit_create(agent=agent, name="ask above 1", max_count=1, on_exceed="hold")
    cap = limit_create(agent=agent, name="never more than 2", max_count=2, on_exceed="deny")
    return ask, cap


def _counts(*limits: Any) -> list[int]:
    return [LimitCounter.objects.get(limit=limit).count for limit in limits]


def test_an_action_held_over_a_hold_limit_is_charged_on_the_other_limits(
    api: AgentApi, agent: Agent
) -> None:
    ask, cap = _hold_above_1_never_more_than_2(agent)
    assert api.decide(refund())["status"] == "allowed"

    held = api.decide(refund())
    assert held["status"] == "pending"
    assert _reason_names(held, "limit") == ["ask above 1"]
    # Counted on the cap it is under; not on the limit that held it (over it already).
    assert _counts(ask, cap) == [1, 2]
    usage = Action.objects.get(pk=held["id"]).limit_usage
    assert [used["limit_id"] for used in usage] == [cap.pk]


def test_approved_actions_never_take_a_deny_limit_over(
    api: AgentApi, agent: Agent, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    ask, cap = _hold_above_1_never_more_than_2(agent)
    assert api.decide(refund())["status"] == "allowed"
    held = api.decide(refund())
    approval_vote(user=reviewer, action_id=held["id"], vote="approve")

    decision = api.decide(refund())
    assert decision["status"] == "denied"  # the deny wins over the hold
    assert _reason_names(decision, "limit") == ["never more than 2"]
    assert Action.objects.filter(status__in=["allowed", "approved"]).count() == 2
    assert _counts(ask, cap) == [1, 2]


def test_a_rejected_action_held_over_a_limit_gives_back_what_it_took(
    api: AgentApi, agent: Agent, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    ask, cap = _hold_above_1_never_more_than_2(agent)
    api.decide(refund())
    held = api.decide(refund())
    assert api.decide(refund())["status"] == "denied"  # the held one has the cap's last slot

    approval_vote(user=reviewer, action_id=held["id"], vote="deny", comment="not now")
    assert _counts(ask, cap) == [1, 1]
    assert api.decide(refund())["status"] == "pending"  # the cap's slot is free again


def test_a_deny_limit_wins_over_a_hold_limit_exceeded_before_any_counter(
    api: AgentApi, agent: Agent
) -> None:
    grant_refunds(agent)
    total = limit_create(
        agent=agent, name="ask above 1000", sum_param="amount", max_sum=1000, on_exceed="hold"
    )
    cap = limit_create(agent=agent, name="one an hour", max_count=1, on_exceed="deny")

    held = api.decide(refund(5000))  # over the sum by itself; under the cap
    assert held["status"] == "pending"
    assert _counts(cap) == [1]
    assert not LimitCounter.objects.filter(limit=total).exists()

    decision = api.decide(refund(5000))  # over both: the cap's deny wins
    assert decision["status"] == "denied"
    assert _reason_names(decision, "limit")[-1] == "one an hour"
    assert _counts(cap) == [1]


def test_an_expired_grant_no_longer_allows(api: AgentApi, agent: Agent) -> None:
    past = timezone.now() - dt.timedelta(minutes=1)
    policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action=REFUND, resource="*", expires_at=past)
    )
    assert api.decide(refund())["status"] == "denied"


# --- the error shape, even outside the handlers --------------------------------------


def test_a_wrong_method_gets_the_json_error_shape(api: AgentApi) -> None:
    # errors.py promises one JSON error shape for the whole agent API.
    response = api.get("/actions")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json", response.content[:80]
    assert set(response.json()) == {"error"}


def test_an_unknown_api_path_gets_the_json_error_shape(api: AgentApi) -> None:
    response = api.post("/action", refund())
    assert response["Content-Type"] == "application/json", response.content[:80]
    api_error(response, 404, "not_found")


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN"])
def test_a_number_json_has_not_is_refused_and_records_nothing(
    api: AgentApi, agent: Agent, number: str
) -> None:
    grant_refunds(agent)
    body = (
        '{"action": "payments.refund", "resource": "stripe:charge/ch_1",'
        f' "params": {{"amount": {number}}}}}'
    )
    response = api.post("/actions", body)
    assert response.status_code == 422, response.content
    assert "finite number" in json.dumps(response.json()["error"]["fields"])
    assert not Action.objects.exists()
