"""Compensators through the SDK, against the real server: a toy payments system that keeps
real state; a refund undone; a refund changed by hand in between reported as a conflict
and left alone; an undo held by a rule until a reviewer approves it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from oversight.audit.actors import Actor
from oversight.gateway.models import Action
from oversight.policy.models import Rule
from oversight.policy.services import policy_object_create
from oversight.rewind.services import action_undo
from oversight_sdk import CompensationTask, Oversight
from tests.conftest import SYSTEM
from tests.gateway.helpers import grant_reversible_refunds, standby_reviewer
from tests.servers import asgi_server

pytestmark = pytest.mark.postgres

REFUND = "payments.refund"


@dataclass
class Ledger:
    """The toy target system: what has been refunded on each charge."""

    refunded: dict[str, int] = field(default_factory=dict)

    def state(self, charge: str) -> dict[str, int]:
        return {"refunded": self.refunded.get(charge, 0)}

    def refund(self, charge: str, amount: int) -> dict[str, int]:
        self.refunded[charge] = self.refunded.get(charge, 0) + amount
        return self.state(charge)

    def charge(self, charge: str, amount: int) -> dict[str, int]:
        self.refunded[charge] = self.refunded.get(charge, 0) - amount
        return self.state(charge)


@pytest.fixture
def live_url(transactional_db: None) -> Iterator[str]:
    with asgi_server(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}) as url:
        yield url


@pytest.fixture
def client(live_url: str, agent: Any) -> Iterator[Oversight]:
    grant_reversible_refunds(agent, {"charge": "params.charge", "amount": "params.amount"})
    raw = token_create(actor=SYSTEM, agent=agent, environment="production")[1]
    with Oversight(live_url, raw, timeout=5, retries=1, backoff=0.05) as client:
        yield client


def _refund(client: Oversight, ledger: Ledger, charge: str, amount: int) -> Action:
    with client.guard(
        REFUND,
        f"stripe:charge/{charge}",
        params={"charge": charge, "amount": amount},
        before=ledger.state(charge),
    ) as guard:
        guard.after = ledger.refund(charge, amount)
    assert guard.decision is not None
    return Action.objects.get(pk=guard.decision.id)


def _register(client: Oversight, ledger: Ledger) -> None:
    def read(task: CompensationTask) -> Any:
        return ledger.state(task.params["charge"])

    @client.compensator(REFUND, read=read)
    def charge_back(task: CompensationTask) -> Any:
        return ledger.charge(task.params["charge"], task.params["amount"])


def test_a_refund_is_undone_by_the_agents_compensator(
    client: Oversight, agent: Any, owner: Any
) -> None:
    ledger = Ledger()
    original = _refund(client, ledger, "ch_1", 40)
    assert original.reversibility == "reversible"
    _register(client, ledger)
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    (done,) = client.run_compensators(wait=2, stop=_after_one_round())
    assert (done.outcome, done.original_status) == ("undone", "rolled_back")
    assert ledger.refunded == {"ch_1": 0}
    compensation.refresh_from_db()
    assert compensation.compensation_left == {"refunded": 0}


def test_a_record_changed_by_hand_is_a_conflict_and_left_untouched(
    client: Oversight, agent: Any, owner: Any
) -> None:
    ledger = Ledger()
    original = _refund(client, ledger, "ch_2", 40)
    ledger.refunded["ch_2"] = 55  # someone refunded more by hand meanwhile
    _register(client, ledger)
    action_undo(actor=Actor.for_user(owner), action=original)
    (done,) = client.run_compensators(wait=2, stop=_after_one_round())
    assert (done.outcome, done.found, done.original_status) == (
        "conflict",
        {"refunded": 55},
        "succeeded",
    )
    assert ledger.refunded == {"ch_2": 55}  # untouched


def test_an_undo_held_by_a_rule_runs_once_a_reviewer_approves_it(
    client: Oversight, agent: Any, owner: Any, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    standby_reviewer(agent)
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(agent=agent, name="charges need a human", effect="hold", action="payments.charge"),
    )
    ledger = Ledger()
    original = _refund(client, ledger, "ch_3", 70)
    _register(client, ledger)
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    assert compensation.status == "pending"
    assert client.compensations(wait=0) == []  # nothing to run until approved
    approval_vote(user=reviewer, action_id=compensation.pk, vote="approve")
    (done,) = client.run_compensators(wait=2, stop=_after_one_round())
    assert (done.outcome, done.original_status) == ("undone", "rolled_back")
    assert ledger.refunded == {"ch_3": 0}


def test_a_worker_reports_what_it_ran_and_a_report_repeated_is_left_out(
    client: Oversight, agent: Any, owner: Any
) -> None:
    ledger = Ledger()
    originals = [_refund(client, ledger, f"ch_{n}", 10 + n) for n in range(6)]
    _register(client, ledger)
    for original in originals:
        action_undo(actor=Actor.for_user(owner), action=original)
    done = client.run_compensators(wait=2, stop=_after_one_round())
    assert sorted(d.task.original.id for d in done) == sorted(str(o.pk) for o in originals)
    assert {(d.outcome, d.original_status) for d in done} == {("undone", "rolled_back")}
    assert set(ledger.refunded.values()) == {0}
    statuses = Action.objects.filter(pk__in=[o.pk for o in originals]).values_list("status")
    assert set(statuses) == {("rolled_back",)}
    assert client.report_compensations(done[:2]) == []  # each is taken once


def _after_one_round() -> Any:
    rounds = iter([False, True])
    return lambda: next(rounds)
