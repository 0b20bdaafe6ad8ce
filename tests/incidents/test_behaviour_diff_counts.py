"""The behaviour diff counts in the database (GROUP BY, JSON opened in SQL): what it finds
is what a recount of the same rows in Python finds. Runs on PostgreSQL and on SQLite,
whose SQL differs only in how params are opened."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from typing import Any

import pytest
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.gateway.models import Action
from oversight.incidents.behaviour_diff import Side, behaviour_diff, side_decisions
from oversight.monitoring.families import resource_family
from tests.incidents.behaviour_data import record, two_releases

pytestmark = pytest.mark.django_db

ACTIONS = ["payments.refund", "payments.charge", "crm.contact.update", "mcp.files.read"]
DECISIONS = {
    "allowed": ["allowed", "succeeded", "failed", "rolled_back"],
    "denied": ["denied"],
    "pending": ["pending", "approved", "rejected", "expired", "succeeded", "failed"],
    "halted": ["halted"],
}


def _row(rng: random.Random) -> dict[str, Any]:
    """A mixed decision: numeric params of both kinds, with ties, and some that are not
    numbers (booleans, strings, lists, objects), which the diff must leave out."""
    action = rng.choice(ACTIONS)
    decision = rng.choices(list(DECISIONS), weights=[6, 2, 2, 1])[0]
    params: dict[str, Any] = {"amount": rng.choice([10, 20, 20, 35.5, rng.uniform(0, 900)])}
    if rng.random() < 0.5:
        params["count"] = rng.randrange(5)
    if rng.random() < 0.3:
        params["ratio"] = rng.random() - 0.5
    params.update(flag=rng.random() < 0.5, name="x", ids=[1, 2], nested={"amount": 5})
    resource = rng.choice(
        [f"stripe:charge/ch_{rng.randrange(50)}", f"crm:contact/{rng.randrange(9)}",
         "db:users:42", "s3://bucket/reports/q1.csv?v=2", "plain"]
    )  # fmt: skip
    return {
        "action": action,
        "resource": resource,
        "params": params,
        "decision": decision,
        "status": rng.choice(DECISIONS[decision]),
    }


def _nearest_rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(share * len(ordered)) - 1]


def _gap(left: list[float], right: list[float]) -> float:
    points = sorted(set(left) | set(right))
    return max(
        abs(sum(v <= x for v in left) / len(left) - sum(v <= x for v in right) / len(right))
        for x in points
    )


def _recount(rows: list[Action]) -> dict[str, Any]:
    values: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        for key, value in row.params.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                values.setdefault((row.action, key), []).append(float(value))
    return {
        "n": len(rows),
        "actions": Counter(r.action for r in rows),
        "decisions": Counter(r.decision for r in rows),
        "families": Counter(resource_family(r.resource) for r in rows),
        "failed": sum(r.status == "failed" for r in rows),
        "ran": sum(r.status in ("succeeded", "failed", "rolled_back") for r in rows),
        "rejected": sum(r.status == "rejected" and r.decision == "pending" for r in rows),
        "answered": sum(
            r.decision == "pending"
            and r.status in ("approved", "rejected", "succeeded", "failed", "rolled_back")
            for r in rows
        ),
        "values": values,
    }


def _assert_side(found: Any, side: str, expected: dict[str, Any]) -> None:
    def arms(rows: list[Any]) -> dict[str, int]:
        return {r.name: getattr(r, side).hits for r in rows if getattr(r, side).hits}

    assert getattr(found, side).decisions == expected["n"]
    assert arms(found.actions) == dict(expected["actions"])
    assert arms(found.decisions) == dict(expected["decisions"])
    assert arms(found.families) == dict(expected["families"])
    failure, rejection = found.rates
    assert (getattr(failure, side).hits, getattr(failure, side).n) == (
        expected["failed"],
        expected["ran"],
    )
    assert (getattr(rejection, side).hits, getattr(rejection, side).n) == (
        expected["rejected"],
        expected["answered"],
    )
    for param in found.params:
        values = expected["values"].get((param.action, param.key), [])
        got = getattr(param, side)
        assert got.count == len(values), (param.name, side)
        if not values:
            assert got.mean is got.p50 is got.p90 is got.max is None
            continue
        assert got.mean == pytest.approx(sum(values) / len(values), rel=1e-9)
        assert got.p50 == pytest.approx(_nearest_rank(values, 0.5), rel=1e-12)
        assert got.p90 == pytest.approx(_nearest_rank(values, 0.9), rel=1e-12)
        assert got.max == pytest.approx(max(values), rel=1e-12)
    assert {(p.action, p.key) for p in found.params if getattr(p, side).count} == set(
        expected["values"]
    )


def test_the_database_counts_what_a_recount_in_python_counts(
    agent: Agent, other_agent: Agent
) -> None:
    old, new = two_releases(agent)
    record(agent, 700, _row, version=old, seed=21)
    record(agent, 500, _row, version=new, seed=22)
    # Not on either side: staging, another agent, and a compensation a rewind asked for.
    record(agent, 200, _row, version=new, environment="staging", seed=23)
    record(other_agent, 200, _row, version=new, seed=24)
    undone = Action.objects.filter(agent=agent, release_version=old).first()
    record(agent, 1, lambda rng: {**_row(rng), "compensates": undone}, version=new, seed=25)

    found = behaviour_diff(agent=agent, left=Side.release(old), right=Side.release(new))

    left = list(side_decisions(agent=agent, side=Side.release(old)))
    right = list(side_decisions(agent=agent, side=Side.release(new)))
    assert (len(left), len(right)) == (700, 500)
    _assert_side(found, "left", _recount(left))
    _assert_side(found, "right", _recount(right))
    recount_left, recount_right = _recount(left)["values"], _recount(right)["values"]
    for param in found.params:
        key = (param.action, param.key)
        if key in recount_left and key in recount_right:
            gap = _gap(recount_left[key], recount_right[key])
            assert param.significance.statistic == pytest.approx(gap, abs=1e-12), key


def test_windows_count_from_start_to_just_before_end(agent: Agent) -> None:
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=3)
    hour = dt.timedelta(hours=1)
    made = record(agent, 300, _row, at=start, spread=3 * hour, seed=31)
    edge = made[0]
    Action.objects.filter(pk=edge.pk).update(created_at=start + hour)  # on a boundary

    found = behaviour_diff(
        agent=agent,
        left=Side.window(start, start + hour),
        right=Side.window(start + hour, start + 3 * hour),
    )

    in_first = Action.objects.filter(created_at__lt=start + hour).count()
    assert (found.left.decisions, found.right.decisions) == (in_first, 300 - in_first)
    _assert_side(found, "right", _recount(list(
        Action.objects.filter(created_at__gte=start + hour)
    )))  # fmt: skip
