"""One decision, whichever way it is asked: the same cases through the API (Django's
handler), the fast lane (the real server), the policy page's preview and the simulator's
path (the SDK against the real server) give the same outcome and the same reasons.

Each entry point starts from the same state: the case arranges it, and the limit counters
are set to the case's usage before every ask (the preview charges nothing; the others do).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.agents.services import agent_update, token_create
from oversight.gateway.preview import decision_preview
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.limits import window_start
from oversight.policy.models import Grant, Limit, LimitCounter, Rule
from oversight.policy.services import policy_object_create, policy_object_delete
from oversight_sdk import APIError, Oversight
from tests.conftest import SYSTEM
from tests.gateway.helpers import grant_refunds, hold_large_refunds, limit_create
from tests.servers import asgi_server

pytestmark = [pytest.mark.postgres]

Outcome = tuple[str, list[tuple[str, str, str, str]]]


@dataclass(frozen=True)
class World:
    url: str
    agent: Agent
    tokens: dict[str, str]  # environment -> raw token
    limit: Limit


@pytest.fixture
def world(transactional_db: None, agent: Agent) -> Iterator[World]:
    """The refund bot: refunds granted, held over 500, at most 1,000 refunded an hour."""
    grant_refunds(agent)
    hold_large_refunds(agent)
    limit = limit_create(
        agent=agent, name="refund total", sum_param="amount", max_sum=Decimal(1000)
    )
    tokens = {
        env: token_create(actor=SYSTEM, agent=agent, environment=env)[1]
        for env in ("production", "staging")
    }
    with asgi_server() as url:
        yield World(url=url, agent=agent, tokens=tokens, limit=limit)


# --- the cases -------------------------------------------------------------------------------


def _hold_all(world: World) -> None:  # as monitoring's agent_hold_set does
    Agent.objects.filter(pk=world.agent.pk).update(hold_all=True, hold_all_reason="Alert #7")


def _kill_switch(world: World) -> None:
    killswitch_engage(actor=SYSTEM, target=parse_target(f"agent:{world.agent.slug}"), reason="x")


def _paused(world: World) -> None:
    agent_update(actor=SYSTEM, agent=world.agent, status="paused")


def _expired_grant(world: World) -> None:
    for grant in Grant.objects.filter(agent=world.agent):
        policy_object_delete(actor=SYSTEM, obj=grant)
    past = timezone.now() - dt.timedelta(days=1)
    policy_object_create(
        actor=SYSTEM,
        obj=Grant(
            agent=world.agent,
            action="payments.refund",
            resource="stripe:charge/*",
            expires_at=past,
        ),
    )


def _erroring_forbid(world: World) -> None:
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=world.agent,
            name="no refunds to flagged customers",
            effect="forbid",
            action="payments.refund",
            condition="params.customer.flagged == true",  # no customer: an error, so it fires
        ),
    )


@dataclass(frozen=True)
class Case:
    params: dict[str, Any]
    expected: str
    arrange: Callable[[World], None] | None = None
    used: int = 0  # refunded already this hour
    environment: str = "production"
    parent_id: uuid.UUID | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CASES = {
    "allowed": Case({"amount": 100}, "allowed"),
    "held-by-a-rule": Case({"amount": 900}, "pending"),
    "hold-all-agent": Case({"amount": 100}, "pending", arrange=_hold_all),
    "negative-amount": Case({"amount": -5}, "denied"),
    "nan-amount": Case({"amount": "NaN"}, "denied"),
    "missing-amount": Case({}, "denied"),
    "string-amount": Case({"amount": "100"}, "pending"),  # the rule errors, so it holds
    "limit-at-its-edge": Case({"amount": 100}, "allowed", used=900),
    "limit-just-over": Case({"amount": 101}, "denied", used=900),
    "kill-switch": Case({"amount": 100}, "halted", arrange=_kill_switch),
    "paused-agent": Case({"amount": 100}, "refused", arrange=_paused),
    "staging-token": Case({"amount": 900}, "dry_run", environment="staging"),
    "unknown-parent": Case({"amount": 100}, "refused", parent_id=uuid.uuid4()),
    "expired-grant": Case({"amount": 100}, "denied", arrange=_expired_grant),
    "erroring-condition": Case({"amount": 100}, "denied", arrange=_erroring_forbid),
}


# --- the entry points ------------------------------------------------------------------------


def _body(case: Case) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": "payments.refund",
        "resource": "stripe:charge/ch_1",
        "params": case.params,
    }
    if case.parent_id:
        body["parent_id"] = str(case.parent_id)
    return body


def _from_answer(status: int, data: dict[str, Any]) -> Outcome:
    if "error" in data:
        assert (status, data["error"]["code"]) in ((403, "agent_unavailable"), (404, "not_found"))
        return "refused", [("error", "", "refuse", data["error"]["message"])]
    return data["status"], [
        (r["kind"], r["name"], r["effect"], r["detail"]) for r in data["reasons"]
    ]


def _api(world: World, case: Case) -> Outcome:
    client = Client(headers={"Authorization": f"Bearer {world.tokens[case.environment]}"})
    response = client.post("/api/v1/actions", _body(case), content_type="application/json")
    return _from_answer(response.status_code, response.json())


def _fast_lane(world: World, case: Case) -> Outcome:
    headers = {"Authorization": f"Bearer {world.tokens[case.environment]}"}
    response = httpx.post(f"{world.url}/api/v1/actions", json=_body(case), headers=headers)
    return _from_answer(response.status_code, response.json())


def _preview(world: World, case: Case) -> Outcome:
    agent = Agent.objects.select_related("team", "owner").get(pk=world.agent.pk)
    preview = decision_preview(
        agent=agent,
        environment=case.environment,
        action="payments.refund",
        resource="stripe:charge/ch_1",
        params=case.params,
        parent_id=case.parent_id,
    )
    if preview.status == "refused":
        return "refused", [("error", "", "refuse", preview.reasons[0]["detail"])]
    return preview.status, [
        (r["kind"], r["name"], r["effect"], r["detail"]) for r in preview.reasons
    ]


def _simulator(world: World, case: Case) -> Outcome:
    """The SDK client the simulator drives (manage.py simulate), against the server."""
    with Oversight(world.url, world.tokens[case.environment], retries=0) as client:
        try:
            decision = client.ask(
                "payments.refund",
                "stripe:charge/ch_1",
                params=case.params,
                parent_id=case.parent_id,
            )
        except APIError as refused:
            data = {"error": {"code": refused.code, "message": refused.message}}
            return _from_answer(refused.status_code, data)
    return decision.status, [(r.kind, r.name, r.effect, r.detail) for r in decision.reasons]


ENTRY_POINTS = {"api": _api, "fast lane": _fast_lane, "preview": _preview, "sdk": _simulator}


def _set_usage(limit: Limit, used: int) -> None:
    LimitCounter.objects.all().delete()
    if used:
        window = window_start(timezone.now(), limit.window_seconds)
        LimitCounter.objects.create(limit=limit, window_start=window, count=1, total=used)


@pytest.mark.parametrize("name", list(CASES))
def test_every_entry_point_decides_alike(world: World, name: str) -> None:
    case = CASES[name]
    if case.arrange:
        case.arrange(world)
    outcomes = {}
    for entry, ask in ENTRY_POINTS.items():
        _set_usage(world.limit, case.used)
        outcomes[entry] = ask(world, case)
    assert outcomes["api"][0] == case.expected, outcomes["api"]
    for entry, outcome in outcomes.items():
        assert outcome == outcomes["api"], f"{entry} differs from the API"
