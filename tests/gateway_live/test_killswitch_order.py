"""A kill switch orders every decision: once an engage has committed, no decision made under
the old state commits after it, in the order of the audit log (docs/decisions/
0012-kill-switch-orders-decisions.md). Checked under load on the real server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from oversight.agents.services import token_create
from oversight.audit import verbs
from oversight.audit.models import AuditEvent
from oversight.audit.verification import audit_chain_verify
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage, killswitch_release
from tests.conftest import SYSTEM
from tests.gateway.helpers import grant_refunds
from tests.servers import asgi_server

pytestmark = [pytest.mark.postgres]

_SENDERS = 8
_CYCLES = 5


@pytest.fixture
def served_agent(transactional_db: None, agent: Any) -> Iterator[tuple[str, str]]:
    """(server URL, token) for an agent allowed to refund without limits."""
    grant_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    with asgi_server() as url:
        yield url, raw


def _send_until(stop: threading.Event, url: str, raw: str, answers: Counter[str]) -> None:
    headers = {"Authorization": f"Bearer {raw}"}
    body = {"action": "payments.refund", "resource": "stripe:charge/ch_1", "params": {}}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        while not stop.is_set():
            response = client.post("/api/v1/actions", json=body)
            answers[response.json().get("status", str(response.status_code))] += 1


def _allowed_while_engaged(agent_id: int) -> tuple[list[int], int]:
    """In audit order: the seq of every decision allowed between an engage and the next
    release of the agent's switch, and how many decisions fell in those spans."""
    engaged = False
    wrong, inside = [], 0
    events = AuditEvent.objects.filter(agent_id=agent_id).order_by("seq")
    for event in events.values("seq", "verb", "after"):
        if event["verb"] == verbs.KILLSWITCH_ENGAGED:
            engaged = True
        elif event["verb"] == verbs.KILLSWITCH_RELEASED:
            engaged = False
        elif event["verb"] == verbs.ACTION_DECIDED and engaged:
            inside += 1
            if event["after"]["status"] == "allowed":
                wrong.append(event["seq"])
    return wrong, inside


def test_no_decision_allowed_under_the_old_state_commits_after_an_engage(
    served_agent: tuple[str, str], agent: Any
) -> None:
    url, raw = served_agent
    stop = threading.Event()
    answers: Counter[str] = Counter()
    senders = [
        threading.Thread(target=_send_until, args=(stop, url, raw, answers))
        for _ in range(_SENDERS)
    ]
    for sender in senders:
        sender.start()
    target = parse_target(f"agent:{agent.slug}")
    try:
        for _ in range(_CYCLES):
            time.sleep(0.4)
            killswitch_engage(actor=SYSTEM, target=target, reason="drill")
            time.sleep(0.3)
            killswitch_release(actor=SYSTEM, target=target, reason="drill over")
        time.sleep(0.3)
    finally:
        stop.set()
        for sender in senders:
            sender.join()

    wrong, inside = _allowed_while_engaged(agent.pk)
    assert wrong == [], f"{len(wrong)} allowed decisions after an engage: seq {wrong[:10]}"
    assert inside > 0 and answers["halted"] > 0  # decisions did arrive while engaged
    assert answers["allowed"] > 100  # and under load
    assert set(answers) <= {"allowed", "halted"}, answers
    assert audit_chain_verify()[1] is None
