"""The framework adapters against the real server (uvicorn in a subprocess), each driven by
its framework's own fake or test model: no network beyond the local server, no keys.

The world every adapter test shares: the agent may refund charges (`payments.refund` on
`stripe:charge/*`, the tool `refund(charge, amount)`); charge `ch_blocked` is forbidden;
refunds over 100 are held for one approval (edits allowed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection

from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from oversight.gateway.models import Action
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.models import Grant, Rule
from oversight.policy.services import policy_object_create
from oversight_sdk import Decision, Oversight
from oversight_sdk.adapters import ToolAction
from tests.conftest import SYSTEM
from tests.gateway.helpers import held_action
from tests.servers import asgi_server, free_port

REFUND = "payments.refund"
REFUND_ACTION = ToolAction(REFUND, resource="stripe:charge/{charge}")
ACTIONS = {"refund": REFUND_ACTION}


@pytest.fixture
def live_url(transactional_db: None) -> Iterator[str]:
    with asgi_server(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}) as url:
        yield url


@pytest.fixture
def unreachable_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


@pytest.fixture
def approver(agent: Any, reviewer: Any) -> Any:
    reviewer.first_name, reviewer.last_name = "Rita", "Reviewer"
    reviewer.save()
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    return reviewer


@pytest.fixture
def policy(agent: Any, approver: Any) -> None:
    for obj in (
        Grant(agent=agent, action=REFUND, resource="stripe:charge/*"),
        Rule(
            agent=agent,
            name="big refunds need a human",
            effect="hold",
            action=REFUND,
            condition="params.amount > 100",
            approvals=1,
            expires_in_seconds=600,
        ),
        Rule(
            agent=agent,
            name="blocked charge",
            effect="forbid",
            action=REFUND,
            resource="stripe:charge/ch_blocked",
        ),
    ):
        policy_object_create(actor=SYSTEM, obj=obj)


@pytest.fixture
def token(agent: Any, policy: None) -> str:
    return token_create(actor=SYSTEM, agent=agent, environment="production")[1]


@pytest.fixture
def staging_token(agent: Any, policy: None) -> str:
    return token_create(actor=SYSTEM, agent=agent, environment="staging")[1]


@pytest.fixture
def halt(agent: Any) -> Callable[[], None]:
    def engage() -> None:
        killswitch_engage(actor=SYSTEM, target=parse_target(f"agent:{agent.slug}"), reason="drill")

    return engage


@dataclass
class Refunds:
    """The tool every scenario calls, and what it actually ran with."""

    executed: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, charge: str, amount: int) -> dict[str, Any]:
        self.executed.append({"charge": charge, "amount": amount})
        return {"refunded": amount, "charge": charge}


@pytest.fixture
def refunds() -> Refunds:
    return Refunds()


def in_thread(run: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run the agent in a thread, so the test can vote meanwhile; the dict says how it ended."""
    ended: dict[str, Any] = {}

    def target() -> None:
        try:
            ended["value"] = run()
        except BaseException as exc:
            ended["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, ended


def vote(user: Any, *, approve: bool, comment: str = "", params: Any = None) -> Action:
    """Wait for the held action and vote on it."""
    action = held_action()
    approval_vote(
        user=user,
        action_id=action.pk,
        vote="approve" if approve else "deny",
        comment=comment,
        params=params,
    )
    return action


def finish(thread: threading.Thread, ended: dict[str, Any]) -> Any:
    thread.join(timeout=30)
    assert not thread.is_alive(), "the agent did not finish"
    if "error" in ended:
        raise ended["error"]
    return ended["value"]


class ApprovedWhileGivingUp(Oversight):
    """The real client, with a person approving in the moment between the end of its
    wait and its giving up: the interleaving a test cannot otherwise time."""

    def __init__(self, *args: Any, approver: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.approver = approver

    def give_up(self, decision: Decision, *, even_if_approved: bool = False) -> Decision:
        approve_in_a_thread(self.approver, decision.id)
        return super().give_up(decision, even_if_approved=even_if_approved)


def in_a_thread(work: Callable[[], Any]) -> None:
    """Run `work` in a thread of its own that closes its connection: the caller may be a
    framework's worker thread or an event loop, whose connection nobody would close."""

    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()


def approve_in_a_thread(user: Any, action_id: Any) -> None:
    """`user` approves the action (`action_id`, or a callable finding it), in a thread of
    its own (`in_a_thread`)."""

    def approve() -> None:
        found = action_id() if callable(action_id) else action_id
        approval_vote(user=user, action_id=found, vote="approve")

    in_a_thread(approve)


def engage_in_a_thread(agent: Any) -> None:
    """An admin engages the agent's kill switch, in a thread of its own (`in_a_thread`)."""
    in_a_thread(
        lambda: killswitch_engage(
            actor=SYSTEM, target=parse_target(f"agent:{agent.slug}"), reason="drill"
        )
    )
