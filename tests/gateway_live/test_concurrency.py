"""Under concurrency nothing is lost or counted twice: exact limits, one action per key."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from oversight.audit.models import AuditEvent
from oversight.audit.verification import audit_chain_verify
from oversight.gateway.models import Action
from oversight.policy.models import LimitCounter
from tests.gateway_live.conftest import LiveAgent

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def server_env() -> dict[str, str]:
    """Every request gets its turn. 500 at once queue for the fast lane's three threads
    longer than a decision's default deadline on a small machine, and those past it are
    answered 503 (test_bounded_waits.py); these tests are about exact counts, not speed."""
    return {"DECISION_TIMEOUT": "60"}


async def _fire(
    live: LiveAgent, bodies: list[dict[str, Any]], headers: list[dict[str, str]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post("/api/v1/actions", json=body, headers={**live.headers, **extra})
                for body, extra in zip(bodies, headers, strict=True)
            )
        )


def _refund(n: int) -> dict[str, Any]:
    return {
        "action": "payments.refund",
        "resource": f"stripe:charge/ch_{n}",
        "params": {"amount": 10},
    }


def test_500_concurrent_requests_against_a_limit_of_100_allow_exactly_100(
    live_agent: LiveAgent,
) -> None:
    responses = asyncio.run(_fire(live_agent, [_refund(n) for n in range(500)], [{}] * 500))

    assert Counter(r.status_code for r in responses) == {201: 500}
    statuses = Counter(r.json()["status"] for r in responses)
    assert statuses == {"allowed": 100, "denied": 400}
    assert Action.objects.filter(status="allowed").count() == 100
    assert Action.objects.count() == 500
    allowed_events = AuditEvent.objects.filter(verb="action.decided", after__status="allowed")
    assert allowed_events.count() == 100
    assert LimitCounter.objects.get().count == 100
    checked, broken = audit_chain_verify()
    assert broken is None and checked == AuditEvent.objects.count()


def test_20_concurrent_requests_with_one_idempotency_key_record_one_action(
    live_agent: LiveAgent,
) -> None:
    body = _refund(1)
    responses = asyncio.run(_fire(live_agent, [body] * 20, [{"Idempotency-Key": "retry-1"}] * 20))

    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Action.objects.count() == 1
    assert AuditEvent.objects.filter(verb="action.decided").count() == 1
    assert LimitCounter.objects.get().count == 1
