"""The outcome reports through the fast lane answer exactly as the API does through Django.

An action's result (``POST /api/v1/actions/<id>/result``) and a compensation's
(``POST /api/v1/compensations/<id>/result``) go to the real ASGI server, where they take
the fast lane, and the same kind of request goes through Django's test client (ninja's
handler) for another action of the same database: status, error and answer must agree,
and what was recorded must be the same.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from oversight.agents.services import agent_update
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway.fastlane import DecisionFastLane
from oversight.gateway.models import Action
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from oversight.rewind.services import action_undo, compensations_claim_for
from tests.conftest import SYSTEM
from tests.gateway.helpers import lane_call, lane_closed
from tests.gateway_live.conftest import LiveAgent
from tests.gateway_live.test_fast_lane import _both, _CountingDjango

pytestmark = [pytest.mark.postgres]

_VOLATILE = ("id", "created_at", "finished_at", "expires_at", "request_id")


def _decided(live: LiveAgent, charge: str, amount: int = 100) -> str:
    body = {
        "action": "payments.refund",
        "resource": f"stripe:charge/{charge}",
        "params": {"amount": amount},
        "before": {"refunded": 0},
    }
    response = httpx.post(live.url + "/api/v1/actions", json=body, headers=live.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _result_both(
    live: LiveAgent, body: Any, headers: dict[str, str] | None = None, *, ids: tuple[str, str]
) -> tuple[httpx.Response, Any]:
    fast, slow = (f"/api/v1/actions/{i}/result" for i in ids)
    return _both(live, body, headers, paths=(fast, slow))


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _VOLATILE}


def test_a_result_is_recorded_and_answered_alike(live_agent: LiveAgent) -> None:
    ids = (_decided(live_agent, "ch_1"), _decided(live_agent, "ch_2"))
    body = {"outcome": "succeeded", "after": {"refunded": 100}}
    fast, slow = _result_both(live_agent, body, ids=ids)
    assert fast.status_code == slow.status_code == 200
    assert fast.json()["status"] == "succeeded"
    assert {**_shape(fast.json()), "resource": "-"} == {**_shape(slow.json()), "resource": "-"}
    assert fast.headers["Content-Type"] == slow["Content-Type"]
    assert fast.headers["X-Content-Type-Options"] == "nosniff"
    assert fast.headers["Content-Length"] == str(len(fast.content))
    for action_id in ids:
        action = Action.objects.get(pk=action_id)
        assert (action.status, action.after) == ("succeeded", {"refunded": 100})
    reported = AuditEvent.objects.filter(verb="action.reported").order_by("seq")
    assert [e.target_id for e in reported] == list(ids)
    assert reported[0].actor_agent_id == reported[1].actor_agent_id == live_agent.agent.pk


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("already-reported", 409, "already_reported"),
        ("another-action", 409, "action_mismatch"),
        ("unknown-action", 404, "not_found"),
        ("unknown-token", 401, "unauthorized"),
        ("bad-outcome", 422, "validation_error"),
        ("malformed-json", 400, "bad_request"),
        ("paused-agent", 403, "agent_unavailable"),
    ],
)
def test_refused_results_agree_and_change_nothing(
    live_agent: LiveAgent, case: str, status: int, code: str
) -> None:
    ids = (_decided(live_agent, "ch_1"), _decided(live_agent, "ch_2"))
    body: Any = {"outcome": "succeeded", "after": {"refunded": 100}}
    headers = None
    if case == "already-reported":
        _result_both(live_agent, {"outcome": "failed", "error": "timeout"}, ids=ids)
    elif case == "another-action":
        body = {**body, "params": {"amount": 7}}
    elif case == "unknown-action":
        ids = ("00000000-0000-0000-0000-000000000001",) * 2
    elif case == "unknown-token":
        headers = {"Authorization": "Bearer ovs_prod_nope"}
    elif case == "bad-outcome":
        body = {"outcome": "done"}
    elif case == "malformed-json":
        body = '{"outcome": '
    elif case == "paused-agent":
        agent_update(actor=SYSTEM, agent=live_agent.agent, status="paused")
    before = list(Action.objects.order_by("pk").values_list("pk", "status", "after"))
    events = AuditEvent.objects.count()
    fast, slow = _result_both(live_agent, body, headers, ids=ids)
    assert fast.status_code == slow.status_code == status
    assert fast.json()["error"]["code"] == slow.json()["error"]["code"] == code
    assert list(Action.objects.order_by("pk").values_list("pk", "status", "after")) == before
    assert AuditEvent.objects.count() == events


def _compensations(live: LiveAgent, count: int) -> list[str]:
    """Succeeded, reversible contact edits of the agent, each undo asked for and taken by
    the agent's compensator: their compensations' ids."""
    policy_object_create(
        actor=SYSTEM,
        obj=Grant(
            agent=live.agent,
            action="crm.update",
            resource="crm:contact/*",
            reversibility="reversible",
            undo_action="crm.update",
            undo_params={"name": "before.name"},
            undo_window_seconds=3600,
        ),
    )
    ids = []
    for n in range(count):
        body = {
            "action": "crm.update",
            "resource": f"crm:contact/{n}",
            "params": {"name": "B"},
            "before": {"name": "A"},
        }
        decided = httpx.post(live.url + "/api/v1/actions", json=body, headers=live.headers)
        action_id = decided.json()["id"]
        result = {"outcome": "succeeded", "after": {"name": "B"}}
        path = f"{live.url}/api/v1/actions/{action_id}/result"
        httpx.post(path, json=result, headers=live.headers)
        original = Action.objects.get(pk=action_id)
        ids.append(str(action_undo(actor=Actor.system("test"), action=original).pk))
    claimed = compensations_claim_for(agent_id=live.agent.pk)
    assert sorted(str(c.pk) for c in claimed) == sorted(ids)
    return ids


def test_a_compensation_report_rolls_back_and_answers_alike(live_agent: LiveAgent) -> None:
    fast_id, slow_id = _compensations(live_agent, 2)
    undone = {"outcome": "undone", "found": {"name": "B"}, "left": {"name": "A"}}
    paths = (f"/api/v1/compensations/{fast_id}/result", f"/api/v1/compensations/{slow_id}/result")
    fast, slow = _both(live_agent, undone, paths=paths)
    assert fast.status_code == slow.status_code == 200
    assert (
        _shape(fast.json())
        == _shape(slow.json())
        == {
            "status": "succeeded",
            "outcome": "undone",
            "original_status": "rolled_back",
        }
    )
    again = httpx.post(
        f"{live_agent.url}/api/v1/compensations/{fast_id}/result",
        json=undone,
        headers=live_agent.headers,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_reported"
    for compensation_id in (fast_id, slow_id):
        compensation = Action.objects.get(pk=compensation_id)
        assert compensation.compensation_outcome == "undone"
        assert compensation.compensates.status == "rolled_back"


def test_a_valid_report_never_reaches_django_and_a_refused_one_does(
    live_agent: LiveAgent,
) -> None:
    action_id = _decided(live_agent, "ch_1")
    django_app = _CountingDjango()
    lane = DecisionFastLane(django_app)
    path = f"/api/v1/actions/{action_id}/result"
    body = json.dumps({"outcome": "succeeded"}).encode()
    try:
        status, answer = lane_call(lane, live_agent.token, body, path=path)
        assert (status, answer["status"], django_app.handled) == (200, "succeeded", 0)
        status, answer = lane_call(lane, live_agent.token, body, path=path)  # the service refuses
        assert (status, answer["error"]["code"], django_app.handled) == (409, "already_reported", 0)
        status, answer = lane_call(lane, "ovs_prod_unknown", body, path=path)
        assert (status, answer["error"]["code"], django_app.handled) == (401, "unauthorized", 1)
        upper = f"/api/v1/actions/{action_id.upper()}/result"  # not the lane's form: Django's
        status, answer = lane_call(lane, live_agent.token, body, path=upper)
        assert (status, django_app.handled) == (409, 2)
    finally:
        lane_closed(lane)
