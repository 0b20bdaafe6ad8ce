"""Recorded decisions for behaviour-diff tests, written in bulk (not through the API: the
diff reads what was recorded, and the tests need thousands of rows)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from oversight.agents.models import Agent
from oversight.gateway.models import Action
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from oversight.releases.models import Release
from tests.conftest import SYSTEM

Row = dict[str, Any]


def two_releases(agent: Agent) -> tuple[int, int]:
    """Two releases of the agent (each policy change makes one): a grant, then another."""
    versions = []
    for action in ("payments.refund", "payments.wire"):
        policy_object_create(
            actor=SYSTEM, obj=Grant(agent=agent, action=action, resource="stripe:charge/*")
        )
        agent.refresh_from_db()
        versions.append(agent.stable_version)
    assert Release.objects.filter(agent=agent, version__in=versions).count() == 2
    return versions[0], versions[1]


def refund_row(rng: random.Random, *, amount_mean: float = 100.0, deny: float = 0.1) -> Row:
    """A refund as the tests' agent asks for one: mostly allowed and succeeded."""
    decision = "denied" if rng.random() < deny else "allowed"
    return {
        "action": "payments.refund",
        "resource": f"stripe:charge/ch_{rng.randrange(10**6)}",
        "params": {"amount": round(rng.expovariate(1 / amount_mean), 2), "note": "ticket"},
        "decision": decision,
        "status": "succeeded" if decision == "allowed" else "denied",
    }


def record(
    agent: Agent,
    rows: int,
    make: Callable[[random.Random], Row],
    *,
    version: int | None = None,
    at: dt.datetime | None = None,
    spread: dt.timedelta = dt.timedelta(0),
    environment: str = "production",
    seed: int = 1,
) -> list[Action]:
    """``rows`` decisions drawn by ``make``, under ``version``, created at ``at`` (plus a
    random share of ``spread``)."""
    rng = random.Random(seed)
    made = []
    for _ in range(rows):
        row = make(rng)
        made.append(
            Action(
                agent=agent,
                environment=environment,
                release_version=version,
                request_hash="0" * 64,
                **{"status": row["decision"], **row},
            )
        )
    created = Action.objects.bulk_create(made, batch_size=2000)
    if at is not None:  # auto_now_add stamped them now
        for action in created:
            action.created_at = at + spread * rng.random()
        Action.objects.bulk_update(created, ["created_at"], batch_size=2000)
    return created
