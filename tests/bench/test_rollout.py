"""The logic of bench/rollout.py: the rounds' order, the ratios to the same round's
baseline, the candidate and the states made through the services, and the check of what
each state's decisions recorded (on decisions the pipeline really made)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Count

from oversight.agents.services import token_create
from oversight.gateway.models import Action
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, refund

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import rollout


def test_each_state_takes_each_place_in_turn() -> None:
    orders = [rollout.round_order(n) for n in range(4)]
    assert orders == [
        ["none", "shadow", "canary"],
        ["shadow", "canary", "none"],
        ["canary", "none", "shadow"],
        ["none", "shadow", "canary"],
    ]
    assert rollout.round_order(1, ("none", "shadow")) == ["shadow", "none"]


def _run(state: str, round_no: int, rps: float, p99: float = 10.0) -> dict[str, Any]:
    return {
        "state": state,
        "round": round_no,
        "rps": rps,
        "latency_ms": {"p50": p99 / 2, "p99": p99},
        "cpu": {"cpu_ms_per_request": {"server": 1000 / rps, "postgres": 0.5}},
        "rss_mib_after": 250.0,
    }


def test_ratios_are_to_the_same_rounds_baseline_and_the_target_is_their_median() -> None:
    runs = [
        _run("none", 0, 500),
        _run("shadow", 0, 450),
        _run("none", 1, 400),
        _run("shadow", 1, 400),
        _run("none", 2, 600),
        _run("shadow", 2, 480),
    ]
    summary = rollout.summarize(runs)
    assert summary["none"]["ratio"] == 1.0
    assert summary["shadow"]["round_ratios"] == [0.9, 1.0, 0.8]
    assert summary["shadow"]["ratio"] == 0.9  # not 450 / 500, the ratio of the medians
    assert summary["shadow"]["rps_median"] == 450
    assert summary["shadow"]["server_cpu_ms_per_request_median"] == round(1000 / 450, 3)
    # by CPU per request: 1000/rps + 0.5 ms each, the baseline's over the state's
    assert summary["shadow"]["round_cpu_ratios"] == [
        round((1000 / base + 0.5) / (1000 / mine + 0.5), 3)
        for mine, base in ((450, 500), (400, 400), (480, 600))
    ]


def test_a_round_without_its_baseline_gives_no_ratio() -> None:
    summary = rollout.summarize([_run("none", 0, 500), _run("canary", 1, 450)])
    assert summary["canary"]["round_ratios"] == []
    assert summary["canary"]["ratio"] is None


def _recorded(ids: list[Any]) -> list[dict[str, Any]]:
    rows = (
        Action.objects.filter(pk__in=ids)
        .values("release_version", "shadow_version", "shadow_status", "status")
        .annotate(count=Count("id"))
    )
    return list(rows)


@pytest.mark.django_db
def test_states_are_made_through_the_services_and_recorded_as_checked(agent: Any) -> None:
    grant_refunds(agent)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    agent.refresh_from_db()
    releases = rollout.candidate_prepare(SYSTEM, agent)
    assert releases["candidate"] == releases["baseline"] + 1
    assert releases["stable"] == releases["candidate"] + 1
    assert agent.stable_version == releases["stable"]

    recorded = {}
    for state in (*rollout.STATES, "shadow", "none"):
        switched = rollout.state_set(SYSTEM, agent, state, releases["candidate_id"])
        expected_stage = "" if state == "none" else state
        assert switched["rollout_stage"] == expected_stage
        assert switched["canary_share"] == (5000 if state == "canary" else 0)
        # over 400: the candidate's extra rule forbids it, the stable release allows it
        ids = [decide(token, refund(450, session_id=f"s-{n}")).pk for n in range(40)]
        recorded[state] = _recorded(ids)
        check = rollout.check_recorded(state, recorded[state], releases["candidate"])
        assert check["ok"], (state, recorded[state])
        assert check["decisions"] == 40

    shadow = recorded["shadow"]
    assert {(r["status"], r["shadow_status"]) for r in shadow} == {("allowed", "denied")}
    canary = {r["release_version"]: r["status"] for r in recorded["canary"]}
    assert canary == {releases["candidate"]: "denied", releases["stable"]: "allowed"}
    # each state's records fail the others' checks
    assert not rollout.check_recorded("canary", shadow, releases["candidate"])["ok"]
    assert not rollout.check_recorded("none", recorded["canary"], releases["candidate"])["ok"]
    assert not rollout.check_recorded("shadow", recorded["none"], releases["candidate"])["ok"]
