"""Building blocks for agent API tests: a refund policy, request bodies, an API client."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from oversight.agents.models import Agent, AgentToken
from oversight.gateway import fastlane
from oversight.gateway.auth import token_refresh
from oversight.gateway.fastlane import DecisionFastLane
from oversight.gateway.models import Action
from oversight.gateway.pipeline import ActionInput, Credentials
from oversight.gateway.pipeline import decide as pipeline_decide
from oversight.lib.deadline import Deadline
from oversight.policy.models import Grant, Limit, Rule
from oversight.policy.services import policy_object_create
from tests.conftest import SYSTEM

REFUND = "payments.refund"
HOLD_ABOVE = 500
ERROR_KEYS = {"code", "message", "fields"}


def refund(amount: Any = 100, *, charges: tuple[str, ...] = ("ch_1",), **fields: Any) -> dict:
    """The body of a refund request; ``amount=None`` leaves the amount out."""
    params: dict[str, Any] = {"charges": list(charges)}
    if amount is not None:
        params["amount"] = amount
    return {"action": REFUND, "resource": f"stripe:charge/{charges[0]}", "params": params, **fields}


def refund_tool(description: str) -> Any:
    """The refund tool (action REFUND) as an MCP proxy lists it, with ``description``."""
    from oversight.agents.tool_pins import SeenTool

    return SeenTool(
        server="payments",
        name="refund",
        action=REFUND,
        description=description,
        input_schema={"type": "object"},
    )


def grant_refunds(agent: Agent) -> Grant:
    return policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action=REFUND, resource="stripe:charge/*")
    )


def standby_reviewer(agent: Agent, approvals: int = 1) -> None:
    """A hold rule is refused unless enough people can approve it: when the test brought
    nobody (or too few), the agent's team gets reviewers ("standby1", ...) who do."""
    from django.contrib.auth import get_user_model

    from oversight.accounts.services import team_reviewer_add
    from oversight.approvals.eligibility import agent_approvers

    missing = approvals - agent_approvers(agent=agent).exclude(pk=agent.owner_id).count()
    for number in range(1, missing + 1):
        user, _ = get_user_model().objects.get_or_create(
            username=f"standby{number}", defaults={"email": f"standby{number}@example.com"}
        )
        team_reviewer_add(actor=SYSTEM, team=agent.team, user=user)
        agent.team.refresh_from_db()


def hold_large_refunds(agent: Agent, **fields: Any) -> Rule:
    standby_reviewer(agent, fields.get("approvals", 1))
    return policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=agent,
            name="large refunds",
            effect="hold",
            action=REFUND,
            condition=f"params.amount > {HOLD_ABOVE}",
            **fields,
        ),
    )


def forbid_big_refunds(agent: Agent) -> Rule:
    """A stricter policy: refunds over 100 forbidden."""
    return policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=agent,
            name="no big refunds",
            effect="forbid",
            action=REFUND,
            condition="params.amount > 100",
        ),
    )


def forbid_many_charges(agent: Agent) -> Rule:
    return policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=agent,
            name="one charge at a time",
            effect="forbid",
            action=REFUND,
            condition="size(params.charges) > 1",
        ),
    )


@dataclass(frozen=True)
class RefundPolicy:
    grant: Grant
    hold: Rule
    forbid: Rule


def refund_policy_create(agent: Agent, **hold_fields: Any) -> RefundPolicy:
    """Grant refunds on Stripe charges, hold those over 500, forbid several charges at once."""
    return RefundPolicy(
        grant=grant_refunds(agent),
        hold=hold_large_refunds(agent, **hold_fields),
        forbid=forbid_many_charges(agent),
    )


def limit_create(**fields: Any) -> Limit:
    defaults: dict[str, Any] = {
        "name": "refunds per hour",
        "action": REFUND,
        "window_seconds": 3600,
    }
    return policy_object_create(actor=SYSTEM, obj=Limit(**{**defaults, **fields}))


def decide(token: AgentToken, body: dict[str, Any]) -> Action:
    """Decide through the pipeline, as the API does, without HTTP (the token's credentials
    read as authentication reads them)."""
    fresh = token_refresh(token.token_hash)
    assert fresh is not None, "the token is not active"
    action, _created = pipeline_decide(credentials=Credentials.of(fresh), data=ActionInput(**body))
    return action


def expire(action: Action) -> None:
    """Move a held action's deadline into the past, as if nobody had decided in time."""
    past = timezone.now() - dt.timedelta(seconds=1)
    Action.objects.filter(pk=action.pk).update(expires_at=past)


class AgentApi:
    """The agent API through Django's test client, speaking as one bearer token."""

    def __init__(self, client: Client, raw: str | None) -> None:
        self.client = client
        self.raw = raw

    def _headers(self, headers: dict[str, Any]) -> dict[str, Any]:
        auth = {"HTTP_AUTHORIZATION": f"Bearer {self.raw}"} if self.raw else {}
        return {**auth, **headers}

    def post(self, path: str, body: Any, **headers: Any) -> HttpResponse:
        """POST ``body`` as JSON (str or bytes are sent as they are)."""
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(
            f"/api/v1{path}", data=data, content_type="application/json", **self._headers(headers)
        )

    def get(self, path: str, **headers: Any) -> HttpResponse:
        return self.client.get(f"/api/v1{path}", **self._headers(headers))

    def decide(self, body: dict[str, Any], **headers: Any) -> dict[str, Any]:
        """POST /actions, expecting a new decision (201)."""
        response = self.post("/actions", body, **headers)
        assert response.status_code == 201, response.content
        return response.json()


def api_error(response: HttpResponse, status: int, code: str) -> dict[str, Any]:
    """Assert the one error shape of the agent API and return its inner object."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def grant_reversible_refunds(agent: Agent, undo_params: dict[str, str]) -> Grant:
    """Refunds, undone by ``payments.charge`` with these params (within an hour), and the
    grant that lets the undo itself be allowed."""
    grant = policy_object_create(
        actor=SYSTEM,
        obj=Grant(
            agent=agent,
            action=REFUND,
            resource="stripe:charge/*",
            reversibility="reversible",
            undo_action="payments.charge",
            undo_params=undo_params,
            undo_window_seconds=3600,
        ),
    )
    policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, action="payments.charge"))
    return grant


def fast_lane_decide(raw: str, body: dict[str, Any]) -> Any:
    """The fast lane's work for one decision, then what it set off, in this thread (as
    its threads do them): ``(status, answer)``, or the error response; raises
    ``fastlane._HandOver`` when Django's handler would answer instead."""
    answer, effects = fastlane._work_by(
        Deadline(30), "test-request", fastlane._decide, raw, ActionInput(**body), ""
    )
    fastlane._effects_by(effects)
    return answer


def held_action(timeout: float = 15) -> Action:
    """The action an agent's call (in another thread or process) became, once it is
    held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        action = Action.objects.filter(status="pending").first()
        if action is not None:
            return action
        time.sleep(0.05)
    raise AssertionError("no held action appeared")


def lane_closed(lane: DecisionFastLane) -> None:
    """Each of the lane's threads gives its database connection back (the lane keeps one
    per thread between decisions), so that the test database can be dropped after."""
    count = lane.threads._max_workers
    barrier = threading.Barrier(count)

    def close() -> None:
        connection.close()
        barrier.wait(timeout=10)  # one task a thread: every thread closes its own

    for future in [lane.threads.submit(close) for _ in range(count)]:
        future.result()
    lane.threads.shutdown()


def lane_call(
    lane: DecisionFastLane,
    token: str,
    body: bytes,
    *,
    path: str = fastlane.PATH,
    on_send: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request to ``lane``, an ASGI application in this process, from a client that
    stays connected: (status, answer). ``on_send``: awaited as each message is sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if on_send is not None:
            await on_send(message)

    asyncio.run(lane(scope, receive, send))
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(payload)
