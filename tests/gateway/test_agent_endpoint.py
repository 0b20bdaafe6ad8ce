"""GET /api/v1/agent: the agent's own status, including whether a kill switch halts it."""

from __future__ import annotations

from typing import Any

import pytest

from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import agent_update, token_revoke
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage, killswitch_release
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, RefundPolicy, api_error

pytestmark = pytest.mark.django_db


def test_the_agent_sees_its_own_status(api: AgentApi, policy: RefundPolicy, agent: Agent) -> None:
    response = api.get("/agent")
    agent.refresh_from_db()
    assert response.status_code == 200
    assert response.json() == {
        "slug": "refund-bot",
        "name": "Refund bot",
        "team": "payments",
        "status": "active",
        "environment": "production",
        "halted": False,
        "halted_reason": "",
        "policy_version": agent.policy_version,
    }


def test_a_staging_token_says_staging(staging_api: AgentApi) -> None:
    assert staging_api.get("/agent").json()["environment"] == "staging"


@pytest.mark.parametrize("scope", ["global", "team:payments", "agent:refund-bot"])
def test_a_covering_kill_switch_shows_as_halted_with_its_reason(
    api: AgentApi, agent: Agent, scope: str
) -> None:
    killswitch_engage(actor=SYSTEM, target=parse_target(scope), reason="refund storm")
    body = api.get("/agent").json()
    assert (body["halted"], body["halted_reason"]) == (True, "refund storm")

    killswitch_release(actor=SYSTEM, target=parse_target(scope), reason="over")
    body = api.get("/agent").json()
    assert (body["halted"], body["halted_reason"]) == (False, "")


def test_another_teams_kill_switch_does_not_show(
    api: AgentApi, other_team: Any, other_agent: Agent
) -> None:
    killswitch_engage(actor=SYSTEM, target=parse_target("team:growth"), reason="theirs")
    killswitch_engage(actor=SYSTEM, target=parse_target("agent:email-campaigner"), reason="also")
    assert api.get("/agent").json()["halted"] is False


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwdw==", "Bearer ovs_prod_not-a-real-token"],
    ids=["no-header", "wrong-scheme", "unknown-token"],
)
def test_without_a_valid_bearer_token_it_is_401(
    anonymous_api: AgentApi, authorization: str | None
) -> None:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    api_error(anonymous_api.get("/agent", **headers), 401, "unauthorized")


def test_a_revoked_token_gets_401(api: AgentApi, prod_token: tuple[AgentToken, str]) -> None:
    token_revoke(actor=SYSTEM, token=prod_token[0])
    api_error(api.get("/agent"), 401, "unauthorized")


@pytest.mark.parametrize("status", ["paused", "retired"])
def test_a_paused_or_retired_agent_gets_403(api: AgentApi, agent: Agent, status: str) -> None:
    agent_update(actor=SYSTEM, agent=agent, status=status)
    error = api_error(api.get("/agent"), 403, "agent_unavailable")
    assert status in error["message"]
