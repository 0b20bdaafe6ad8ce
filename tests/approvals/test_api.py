"""The approvals API for people: personal tokens only, the browser's permissions, clear
refusals that change nothing, and one outcome when two people vote at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from oversight.accounts.models import PersonalToken
from oversight.accounts.services import personal_token_create, personal_token_revoke
from oversight.agents.models import AgentToken
from oversight.agents.services import token_create
from oversight.approvals.models import ApprovalVote
from oversight.gateway.models import Action
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, api_error, decide, refund, refund_policy_create

pytestmark = pytest.mark.django_db


def _api(user: Any) -> AgentApi:
    return AgentApi(Client(), personal_token_create(user=user, name="cli")[1])


@pytest.fixture
def held(prod_token: AgentToken) -> Action:
    refund_policy_create(prod_token.agent)
    action = decide(prod_token, refund(900))
    assert action.status == "pending"
    return action


def _unchanged(action: Action) -> None:
    fresh = Action.objects.get(pk=action.pk)
    assert (fresh.status, fresh.params) == ("pending", action.params)
    assert not ApprovalVote.objects.filter(action=action).exists()


def test_a_reviewer_lists_what_she_may_decide(rita: Any, held: Action) -> None:
    response = _api(rita).get("/approvals")

    assert response.status_code == 200, response.content
    [item] = response.json()
    assert item["id"] == str(held.pk)
    assert item["agent"]["slug"] == held.agent.slug
    assert (item["action"], item["resource"]) == (held.action, held.resource)
    assert item["params"] == {"amount": 900, "charges": ["ch_1"]}
    assert item["reasons"][0]["name"] == "large refunds"
    assert item["expires_at"] and item["votes"] == []
    assert (item["approvals_required"], item["approvals"], item["edits_allowed"]) == (1, 0, True)
    assert item["request_hash"] == held.request_hash  # what an approval of it sends back


def test_a_deny_through_the_api_reaches_the_agent_s_view(
    rita: Any, held: Action, prod_token: AgentToken
) -> None:
    rita.first_name, rita.last_name = "Rita", "Reviewer"
    rita.save()
    response = _api(rita).post(
        f"/approvals/{held.pk}/vote", {"vote": "deny", "comment": "Refund 400 at most"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "rejected"

    raw = token_create(actor=SYSTEM, agent=held.agent, environment="production")[1]
    seen = AgentApi(Client(), raw).get(f"/actions/{held.pk}").json()
    [vote] = seen["votes"]
    assert vote["voter"] == {"username": rita.username, "name": "Rita Reviewer"}
    assert (vote["vote"], vote["comment"]) == ("deny", "Refund 400 at most")


def test_an_approval_with_edited_params(rita: Any, held: Action) -> None:
    edited = {"amount": 400, "charges": ["ch_1"]}
    response = _api(rita).post(
        f"/approvals/{held.pk}/vote",
        {"vote": "approve", "comment": "400", "params": edited, "request_hash": held.request_hash},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["params"], body["edited"]) == ("approved", edited, True)
    assert body["requested_params"] == {"amount": 900, "charges": ["ch_1"]}
    assert body["votes"][0]["params"] == edited
    assert body["request_hash"] == Action.objects.get(pk=held.pk).request_hash != held.request_hash
    # The edited params decided again: a grant allows 400, no rule holds it.
    assert [(r["kind"], r["effect"]) for r in body["edit_reasons"]] == [("grant", "allow")]
    listed = _api(rita).get("/approvals").json()
    assert all(a["edit_reasons"] is None for a in listed)  # none of these was edited


def test_an_agent_token_does_not_work_on_the_approvals_api(
    prod_token: AgentToken, held: Action
) -> None:
    raw = token_create(actor=SYSTEM, agent=held.agent, environment="production")[1]
    agent = AgentApi(Client(), raw)
    api_error(agent.get("/approvals"), 401, "unauthorized")
    api_error(agent.post(f"/approvals/{held.pk}/vote", {"vote": "approve"}), 401, "unauthorized")
    _unchanged(held)


def test_a_personal_token_does_not_work_on_the_agent_api(rita: Any, held: Action) -> None:
    person = _api(rita)
    api_error(person.get(f"/actions/{held.pk}"), 401, "unauthorized")
    api_error(person.post("/actions", refund(10)), 401, "unauthorized")
    api_error(person.get("/agent"), 401, "unauthorized")


def test_a_revoked_token_or_a_deactivated_person_is_refused(rita: Any, held: Action) -> None:
    token, raw = personal_token_create(user=rita)
    api = AgentApi(Client(), raw)
    assert api.get("/approvals").status_code == 200
    assert personal_token_revoke(user=rita, token_id=token.pk)
    api_error(api.get("/approvals"), 401, "unauthorized")

    api = _api(rita)
    rita.is_active = False
    rita.save()
    api_error(api.get("/approvals"), 401, "unauthorized")


def test_the_token_is_stored_hashed(rita: Any) -> None:
    token, raw = personal_token_create(user=rita)
    assert raw.startswith("ovp_") and raw not in (token.token_hash, token.prefix)
    assert not PersonalToken.objects.filter(token_hash=raw).exists()


def test_permissions_are_the_browser_s(
    held: Action, teammate: Any, outsider: Any, owner: Any
) -> None:
    # The outsider sees nothing of the agent: an empty queue, and 404 as for no action.
    assert _api(outsider).get("/approvals").json() == []
    approve = {"vote": "approve", "request_hash": held.request_hash}
    api_error(_api(outsider).post(f"/approvals/{held.pk}/vote", approve), 404, "not_found")
    # The teammate sees the agent but may not decide its actions.
    assert _api(teammate).get("/approvals").json() == []
    api_error(_api(teammate).post(f"/approvals/{held.pk}/vote", approve), 403, "forbidden")
    _unchanged(held)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"vote": "maybe"}, "vote"),
        ({"vote": "approve", "request_hash": None}, "request_hash"),
        ({"vote": "approve", "request_hash": ""}, "request_hash"),
        ({"vote": "approve", "request_hash": "f" * 65}, "request_hash"),
        ({"vote": "deny"}, "comment"),
        ({"vote": "deny", "comment": " "}, "comment"),
        ({"vote": "approve", "params": {"amount": "lots", "charges": ["ch_1"]}}, "params"),
        ({"vote": "approve", "params": {"amount": 1}}, "params"),
        ({"vote": "approve", "params": [1]}, "params"),
        ({"vote": "deny", "comment": "no", "params": {"amount": 1, "charges": []}}, "params"),
        ({"vote": "approve", "comment": "x" * 2001}, "comment"),
    ],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    rita: Any, held: Action, body: dict[str, Any], field: str
) -> None:
    sent = {"request_hash": held.request_hash, **body}  # an approval says what it saw
    error = api_error(_api(rita).post(f"/approvals/{held.pk}/vote", sent), 422, "validation_error")
    assert field in error["fields"], error
    _unchanged(held)


def test_an_approval_must_say_which_version_of_the_action_it_approves(
    rita: Any, held: Action
) -> None:
    error = api_error(
        _api(rita).post(f"/approvals/{held.pk}/vote", {"vote": "approve"}), 422, "validation_error"
    )
    assert "request_hash" in error["message"] and "request_hash" in error["fields"]
    _unchanged(held)


def test_an_approval_of_an_action_edited_since_it_was_listed_is_a_conflict(
    prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    refund_policy_create(prod_token.agent, approvals=2)
    action = decide(prod_token, refund(900))
    [listed] = _api(rita).get("/approvals").json()  # rita reads 900
    edited = {"amount": 4900, "charges": ["ch_1"]}
    answer = _api(rob).post(
        f"/approvals/{action.pk}/vote",
        {"vote": "approve", "params": edited, "request_hash": action.request_hash},
    )
    assert answer.status_code == 200 and answer.json()["status"] == "pending"

    stale = {"vote": "approve", "request_hash": listed["request_hash"]}
    error = api_error(_api(rita).post(f"/approvals/{action.pk}/vote", stale), 409, "action_changed")
    assert "edited since you loaded it" in error["message"]
    assert not ApprovalVote.objects.filter(action=action, voter=rita).exists()

    [listed] = _api(rita).get("/approvals").json()  # she reads it again: 4900
    assert listed["params"] == edited
    fresh = {"vote": "approve", "request_hash": listed["request_hash"]}
    approved = _api(rita).post(f"/approvals/{action.pk}/vote", fresh)
    assert (approved.status_code, approved.json()["status"]) == (200, "approved")


def test_a_body_that_is_not_json_is_refused(rita: Any, held: Action) -> None:
    api_error(_api(rita).post(f"/approvals/{held.pk}/vote", "{not json"), 400, "bad_request")
    _unchanged(held)


def test_a_second_vote_and_a_decided_action_are_conflicts(
    rita: Any, rob: Any, held: Action
) -> None:
    api, approve = _api(rita), {"vote": "approve", "request_hash": held.request_hash}
    assert api.post(f"/approvals/{held.pk}/vote", approve).status_code == 200
    api_error(api.post(f"/approvals/{held.pk}/vote", approve), 409, "already_decided")
    api_error(
        _api(rob).post(f"/approvals/{held.pk}/vote", {"vote": "deny", "comment": "x"}),
        409,
        "already_decided",
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_voting_at_once_give_one_outcome(
    prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    refund_policy_create(prod_token.agent)
    held = decide(prod_token, refund(900))
    approve = {"vote": "approve", "request_hash": held.request_hash}
    apis = [(_api(rita), approve), (_api(rob), {"vote": "deny", "comment": "no"})]
    start, answers = threading.Barrier(2), []

    def vote(api: AgentApi, body: dict[str, Any]) -> None:
        try:
            start.wait(timeout=5)
            answers.append(api.post(f"/approvals/{held.pk}/vote", body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=vote, args=pair) for pair in apis]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(answers) == [200, 409]
    [vote_row] = ApprovalVote.objects.filter(action=held)
    final = Action.objects.get(pk=held.pk).status
    assert final == ("approved" if vote_row.vote == "approve" else "rejected")


def test_what_she_voted_on_leaves_her_list_until_an_edit_supersedes_her_vote(
    prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    refund_policy_create(prod_token.agent, approvals=2)
    action = decide(prod_token, refund(900))
    approve = {"vote": "approve", "request_hash": action.request_hash}
    assert _api(rob).post(f"/approvals/{action.pk}/vote", approve).status_code == 200
    assert _api(rob).get("/approvals").json() == []  # nothing left for him to decide
    assert [a["id"] for a in _api(rita).get("/approvals").json()] == [str(action.pk)]

    edited = {
        "vote": "approve",
        "request_hash": action.request_hash,
        "params": {"amount": 400, "charges": ["ch_1"]},
    }
    assert _api(rita).post(f"/approvals/{action.pk}/vote", edited).status_code == 200
    [back] = _api(rob).get("/approvals").json()  # his approval was of other params
    assert back["params"]["amount"] == 400


@pytest.mark.parametrize("seen", ["abc", "C" * 64, "0" * 63, "g" * 64])
@pytest.mark.parametrize("vote", [{"vote": "approve"}, {"vote": "deny", "comment": "no"}])
def test_a_request_hash_that_is_not_one_is_bad_input_not_a_conflict(
    rita: Any, held: Action, seen: str, vote: dict[str, str]
) -> None:
    body = {**vote, "request_hash": seen}
    error = api_error(_api(rita).post(f"/approvals/{held.pk}/vote", body), 422, "validation_error")
    assert "not a request hash" in " ".join(error["fields"]["request_hash"]), error
    _unchanged(held)


def test_a_well_formed_hash_of_no_version_shown_is_a_conflict(rita: Any, held: Action) -> None:
    body = {"vote": "approve", "request_hash": "0" * 64}
    error = api_error(_api(rita).post(f"/approvals/{held.pk}/vote", body), 409, "action_changed")
    # Nobody edited it: the answer does not say so ("edited since you loaded it").
    assert "it has not been edited" in error["message"], error
    _unchanged(held)
