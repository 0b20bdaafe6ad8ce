"""The decision fast lane answers exactly as the API does through Django.

Each request goes to the real ASGI server (where POST /api/v1/actions takes the fast
lane) and, for the same database, through Django's test client (django-ninja's
handler); status, error code and the fields of the answer must agree.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import Client

from oversight.agents.services import agent_update
from oversight.audit.models import AuditEvent
from oversight.gateway.constants import MAX_BODY_BYTES
from oversight.gateway.fastlane import DecisionFastLane
from oversight.gateway.models import Action
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage, killswitch_release
from tests.conftest import SYSTEM
from tests.gateway.helpers import lane_call, lane_closed
from tests.gateway_live.conftest import LiveAgent

pytestmark = [pytest.mark.postgres]

PATH = "/api/v1/actions"


def _refund(amount: Any = 100, charge: str = "ch_1", **extra: Any) -> dict[str, Any]:
    return {
        "action": "payments.refund",
        "resource": f"stripe:charge/{charge}",
        "params": {"amount": amount},
        **extra,
    }


def _both(
    live: LiveAgent,
    body: Any,
    headers: dict[str, str] | None = None,
    *,
    paths: tuple[str, str] = (PATH, PATH),
) -> tuple[httpx.Response, Any]:
    """The same request to the fast lane and through Django (``paths``: to each, when
    the two must name different actions)."""
    headers = {**live.headers, **(headers or {})}
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    fast = httpx.post(
        live.url + paths[0],
        content=content,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    slow = Client().post(paths[1], data=content, content_type="application/json", **meta)
    return fast, slow


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    """What must agree: everything but the new action's id, deadline and request id."""
    if "error" in body:
        return body
    return {k: v for k, v in body.items() if k not in ("id", "expires_at", "request_id")} | {
        "has_deadline": body["expires_at"] is not None
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (_refund(100), "allowed"),
        (_refund(600), "pending"),
        ({"action": "crm.delete", "resource": "crm:contact/1"}, "denied"),
    ],
    ids=["allowed", "held", "denied"],
)
def test_decisions_agree(live_agent: LiveAgent, body: dict[str, Any], status: str) -> None:
    fast, slow = _both(live_agent, body)
    assert fast.status_code == slow.status_code == 201
    assert fast.json()["status"] == status
    assert _shape(fast.json()) == _shape(slow.json())
    assert fast.headers["Content-Type"] == slow["Content-Type"]
    # Each answer names its own ask's request id, the one its header echoes.
    assert fast.json()["request_id"] == fast.headers["X-Request-ID"]
    assert slow.json()["request_id"] == slow["X-Request-ID"]
    assert Action.objects.filter(status=status).count() == 2
    assert AuditEvent.objects.filter(verb="action.decided").count() == 2


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (_refund(), {"Authorization": "Bearer ovs_prod_nope"}, 401, "unauthorized"),
        (_refund(), {"Authorization": "Basic abc"}, 401, "unauthorized"),
        ({"resource": "stripe:charge/ch_1"}, {}, 422, "validation_error"),
        ({**_refund(), "action": "Pay Refund"}, {}, 422, "validation_error"),
        ('{"action": "payments.refund",', {}, 400, "bad_request"),
        ("[1, 2]", {}, 422, "validation_error"),
        (_refund(), {"Idempotency-Key": "k" * 201}, 422, "validation_error"),
        (_refund(parent_id="00000000-0000-0000-0000-000000000001"), {}, 404, "not_found"),
    ],
    ids=[
        "unknown-token",
        "not-bearer",
        "missing-action",
        "bad-action-name",
        "malformed-json",
        "not-an-object",
        "key-too-long",
        "unknown-parent",
    ],
)
def test_refusals_agree_and_record_nothing(
    live_agent: LiveAgent, body: Any, headers: dict[str, str], status: int, code: str
) -> None:
    fast, slow = _both(live_agent, body, headers)
    assert fast.status_code == slow.status_code == status
    assert fast.json() == slow.json()
    assert fast.json()["error"]["code"] == code
    assert not Action.objects.exists()


def test_a_paused_agent_is_refused_alike(live_agent: LiveAgent) -> None:
    agent_update(actor=SYSTEM, agent=live_agent.agent, status="paused")
    fast, slow = _both(live_agent, _refund())
    assert fast.status_code == slow.status_code == 403
    assert fast.json() == slow.json()


def test_a_kill_switch_halts_the_next_decision_and_its_release_lets_it_through(
    live_agent: LiveAgent,
) -> None:
    switch = killswitch_engage(
        actor=SYSTEM, target=parse_target("agent:refund-bot"), reason="drill"
    )
    fast, _ = _both(live_agent, _refund())
    assert fast.json()["status"] == "halted"
    assert fast.json()["reasons"][0]["id"] == switch.pk
    killswitch_release(actor=SYSTEM, target=parse_target("agent:refund-bot"), reason="done")
    fast, _ = _both(live_agent, _refund(charge="ch_2"))
    assert fast.json()["status"] == "allowed"


def test_an_idempotent_retry_gets_the_first_answer_and_another_body_409(
    live_agent: LiveAgent,
) -> None:
    headers = {**live_agent.headers, "Idempotency-Key": "retry-1"}
    first = httpx.post(live_agent.url + PATH, json=_refund(), headers=headers)
    again = httpx.post(live_agent.url + PATH, json=_refund(), headers=headers)
    other = httpx.post(live_agent.url + PATH, json=_refund(7), headers=headers)
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert Action.objects.count() == 1


def test_the_request_id_and_security_headers_are_kept(live_agent: LiveAgent) -> None:
    response = httpx.post(
        live_agent.url + PATH,
        json=_refund(),
        headers={**live_agent.headers, "X-Request-ID": "trace-42"},
    )
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "trace-42"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Content-Length"] == str(len(response.content))
    assert "Transfer-Encoding" not in response.headers
    event = AuditEvent.objects.get(verb="action.decided")
    assert event.request_id == "trace-42"


def test_a_body_over_the_limit_is_413_whether_sent_at_once_or_in_chunks(
    live_agent: LiveAgent,
) -> None:
    big = json.dumps(_refund(before={"blob": "x" * MAX_BODY_BYTES})).encode()

    def chunks() -> Any:
        for start in range(0, len(big), 16 * 1024):
            yield big[start : start + 16 * 1024]

    for content in (big, chunks()):
        response = httpx.post(
            live_agent.url + PATH,
            content=content,
            headers={**live_agent.headers, "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
    assert not Action.objects.exists()


def test_other_methods_and_paths_are_djangos(live_agent: LiveAgent) -> None:
    assert httpx.get(live_agent.url + PATH, headers=live_agent.headers).status_code == 405
    assert httpx.get(live_agent.url + "/api/v1/agent", headers=live_agent.headers).json()[
        "slug"
    ] == ("refund-bot")


class _CountingDjango(ASGIHandler):
    """Django's real ASGI handler, counting the requests handed to it."""

    def __init__(self) -> None:
        super().__init__()
        self.handled = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.handled += 1
        await super().__call__(scope, receive, send)


def test_a_valid_request_never_reaches_django_and_a_refused_one_does(
    live_agent: LiveAgent,
) -> None:
    django_app = _CountingDjango()
    lane = DecisionFastLane(django_app)
    try:
        status, body = lane_call(lane, live_agent.token, json.dumps(_refund()).encode())
        assert (status, body["status"], django_app.handled) == (201, "allowed", 0)
        status, body = lane_call(lane, "ovs_prod_unknown", json.dumps(_refund()).encode())
        assert (status, body["error"]["code"], django_app.handled) == (401, "unauthorized", 1)
        status, body = lane_call(lane, live_agent.token, b"{")
        assert (status, body["error"]["code"], django_app.handled) == (400, "bad_request", 2)
    finally:
        lane_closed(lane)
