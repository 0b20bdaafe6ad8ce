"""GET /api/v1/agent/release: the release a session of the agent runs, its instructions,
model and tools, so that an agent loading them from here follows its releases."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from oversight.agents.services import agent_update, token_create
from oversight.releases.services import release_rollback
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, api_error

pytestmark = pytest.mark.django_db

TOOLS = [{"name": "refund", "description": "Refund a charge.", "input_schema": {"type": "object"}}]


@pytest.fixture
def api(client: Client, agent: Any) -> AgentApi:
    return AgentApi(client, token_create(actor=SYSTEM, agent=agent, environment="production")[1])


def test_it_answers_the_stable_release_and_follows_a_rollback(api: AgentApi, agent: Any) -> None:
    agent_update(actor=SYSTEM, agent=agent, instructions="Be kind.", model_name="m-1", tools=TOOLS)
    agent_update(actor=SYSTEM, agent=agent, instructions="Be quick.", model_name="m-2")
    agent.refresh_from_db()
    answer = api.get("/agent/release?session_id=s-1").json()
    assert answer["version"] == agent.stable_version == 3
    assert answer["stage"] == "stable"
    assert (answer["instructions"], answer["model"]) == ("Be quick.", "m-2")
    assert answer["tools"] == TOOLS
    assert answer["digest"] == agent.stable_release.digest
    assert api.get("/agent/release").json()["version"] == 3  # a session is optional

    release_rollback(actor=SYSTEM, release=agent.releases.get(version=2))
    rolled_back = api.get("/agent/release?session_id=s-1").json()
    assert (rolled_back["version"], rolled_back["instructions"]) == (4, "Be kind.")


def test_it_refuses_a_bad_session_id_and_needs_a_token(api: AgentApi, client: Client) -> None:
    api_error(api.get("/agent/release?session_id=" + "x" * 101), 422, "validation_error")
    api_error(api.get("/agent/release?session_id=a%00b"), 422, "validation_error")
    assert AgentApi(client, None).get("/agent/release").status_code == 401


def test_a_reason_from_a_rule_only_the_candidate_has_answers_id_null_as_documented(
    api: AgentApi, agent: Any, client: Client
) -> None:
    from oversight.policy.models import Rule
    from oversight.policy.services import policy_object_create
    from oversight.releases.models import Release
    from oversight.releases.rollouts import rollout_start
    from tests.gateway.helpers import REFUND, grant_refunds, refund

    grant_refunds(agent)  # v2
    policy_object_create(  # v3: only the candidate will have it
        actor=SYSTEM, obj=Rule(agent=agent, name="no refunds", effect="forbid", action=REFUND)
    )
    release_rollback(actor=SYSTEM, release=Release.objects.get(agent=agent, version=2))  # v4
    rollout_start(
        actor=SYSTEM,
        release=Release.objects.get(agent=agent, version=3),
        stage="canary",
        plan=[50, 100],
    )
    answer = api.decide(refund(10, session_id="s-1", release=3))
    assert (answer["release"], answer["status"]) == (3, "denied")
    reason = next(r for r in answer["reasons"] if r["kind"] == "rule")
    assert (reason["id"], reason["name"]) == (None, "no refunds")
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["ReasonOut"]
    id_field = schema["properties"]["id"]
    assert {"type": "null"} in id_field["anyOf"] and "null when" in id_field["description"]
