"""The conformance suite's world decides as clients/python/tests/conformance expects, is
made once, and its check finds an action that was let run but never reported."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.gateway.helpers import AgentApi
from tests.sdk.conformance_world import build_world, check_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, str]:
    return build_world("http://127.0.0.1:9")


def _refund(api: AgentApi, charge: str, amount: int, action: str = "payments.refund") -> Any:
    params = {"charge": charge, "amount": amount}
    return api.decide({"action": action, "resource": f"stripe:charge/{charge}", "params": params})


@pytest.mark.parametrize("action", ["payments.refund", "mcp.payments.refund"])
def test_the_bot_is_allowed_denied_and_held_as_the_scenarios_say(
    client: Client, world: dict[str, str], action: str
) -> None:
    api = AgentApi(client, world["token"])
    assert _refund(api, "ch_1", 10, action)["status"] == "allowed"
    denied = _refund(api, "ch_blocked", 10, action)
    assert denied["status"] == "denied"
    assert any("blocked" in reason["name"] for reason in denied["reasons"])
    assert _refund(api, "ch_2", 150, action)["status"] == "pending"
    staging = AgentApi(client, world["staging_token"])
    assert _refund(staging, "ch_3", 10, action)["status"] == "dry_run"
    assert _refund(AgentApi(client, world["halted_token"]), "ch_4", 10, action)["status"] == (
        "halted"
    )


def test_the_reviewer_may_decide_the_bots_held_actions(
    client: Client, world: dict[str, str]
) -> None:
    held = _refund(AgentApi(client, world["token"]), "ch_1", 150)
    reviewer = {"HTTP_AUTHORIZATION": f"Bearer {world['reviewer_token']}"}
    queue = client.get("/api/v1/approvals", **reviewer).json()
    assert [(a["id"], a["edits_allowed"]) for a in queue] == [(held["id"], True)]


def test_the_world_is_made_once(world: dict[str, str]) -> None:
    with pytest.raises(SystemExit, match="exists already"):
        build_world("http://127.0.0.1:9")


def test_the_check_finds_actions_let_run_but_never_reported(
    client: Client, world: dict[str, str]
) -> None:
    assert check_world() == []
    allowed = _refund(AgentApi(client, world["token"]), "ch_1", 10)
    assert check_world() == [
        f"action {allowed['id']} (payments.refund on stripe:charge/ch_1) is allowed: never reported"
    ]
