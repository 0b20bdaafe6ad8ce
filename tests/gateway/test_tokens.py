"""Agent tokens: the `agent_token` command, storage as SHA-256 only, revoke and rotate."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import agent_update, token_revoke, token_rotate
from oversight.audit.models import AuditEvent
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, api_error

pytestmark = pytest.mark.django_db


def _agent_token(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("agent_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_only_the_token(agent: Agent) -> None:
    out, err = _agent_token("refund-bot")
    lines = out.splitlines()
    assert len(lines) == 1 and out == lines[0] + "\n"
    assert lines[0].startswith("ovs_prod_")
    assert len(lines[0]) == len("ovs_prod_") + 43
    assert err == ""


def test_the_command_issues_staging_tokens_on_request(agent: Agent) -> None:
    out, _ = _agent_token("refund-bot", "--env", "staging", "--name", "ci")
    assert out.startswith("ovs_stg_")
    token = AgentToken.objects.get()
    assert (token.environment, token.name) == ("staging", "ci")


def test_the_printed_token_works(client: Client, agent: Agent) -> None:
    raw = _agent_token("refund-bot")[0].strip()
    response = AgentApi(client, raw).get("/agent")
    assert response.status_code == 200
    assert response.json()["environment"] == "production"


def test_only_the_sha256_of_the_token_is_stored(agent: Agent) -> None:
    raw = _agent_token("refund-bot")[0].strip()
    token = AgentToken.objects.get()
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(token.prefix) and len(token.prefix) < len(raw)

    stored = json.dumps(list(AgentToken.objects.values()), default=str)
    assert raw not in stored
    assert raw[len(token.prefix) :] not in stored
    audited = json.dumps(list(AuditEvent.objects.values("before", "after", "target_label")))
    assert raw not in audited
    assert AuditEvent.objects.get(verb="token.created").after["token"] == token.prefix


def test_an_unknown_slug_fails_and_creates_nothing(agent: Agent) -> None:
    with pytest.raises(CommandError, match="No agent with slug 'no-such-bot'"):
        _agent_token("no-such-bot")
    assert not AgentToken.objects.exists()


def test_an_environment_the_agent_is_not_registered_for_fails(other_agent: Agent) -> None:
    with pytest.raises(CommandError, match="not registered for production"):
        _agent_token("email-campaigner", "--env", "production")
    assert not AgentToken.objects.exists()
    assert not AuditEvent.objects.filter(verb="token.created").exists()


def test_an_unknown_environment_fails(agent: Agent) -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        _agent_token("refund-bot", "--env", "qa")


def test_a_retired_agent_gets_no_new_token(agent: Agent) -> None:
    agent_update(actor=SYSTEM, agent=agent, status="retired")
    with pytest.raises(CommandError, match="retired"):
        _agent_token("refund-bot")
    assert not AgentToken.objects.exists()


def test_a_revoked_token_gets_401(api: AgentApi, prod_token: tuple[AgentToken, str]) -> None:
    assert api.get("/agent").status_code == 200
    assert token_revoke(actor=SYSTEM, token=prod_token[0]) is True
    api_error(api.get("/agent"), 401, "unauthorized")
    assert AuditEvent.objects.filter(verb="token.revoked").count() == 1


def test_revoking_twice_records_once(prod_token: tuple[AgentToken, str]) -> None:
    token_revoke(actor=SYSTEM, token=prod_token[0])
    assert token_revoke(actor=SYSTEM, token=prod_token[0]) is False
    assert AuditEvent.objects.filter(verb="token.revoked").count() == 1


def test_after_rotation_the_old_token_is_401_and_the_new_one_works(
    client: Client, api: AgentApi, prod_token: tuple[AgentToken, str]
) -> None:
    new_token, new_raw = token_rotate(actor=SYSTEM, token=prod_token[0])

    api_error(api.get("/agent"), 401, "unauthorized")
    response = AgentApi(client, new_raw).get("/agent")
    assert response.status_code == 200
    assert new_raw != prod_token[1]
    assert (new_token.environment, new_token.name) == ("production", "prod")


def test_a_revoked_token_cannot_be_rotated(prod_token: tuple[AgentToken, str]) -> None:
    token_revoke(actor=SYSTEM, token=prod_token[0])
    with pytest.raises(ValidationError, match="already revoked"):
        token_rotate(actor=SYSTEM, token=prod_token[0])
    assert AgentToken.objects.count() == 1


def test_last_used_at_is_set_on_use(api: AgentApi, prod_token: tuple[AgentToken, str]) -> None:
    token = prod_token[0]
    assert token.last_used_at is None
    api.get("/agent")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_an_unused_token_keeps_last_used_at_empty(
    api: AgentApi, staging_token: tuple[AgentToken, str]
) -> None:
    api.get("/agent")
    staging_token[0].refresh_from_db()
    assert staging_token[0].last_used_at is None


@pytest.mark.parametrize("path", ["/agent", "/actions"])
def test_the_tokens_of_a_paused_agent_are_refused_with_403(
    api: AgentApi, staging_api: AgentApi, agent: Agent, path: str
) -> None:
    agent_update(actor=SYSTEM, agent=agent, status="paused")
    for as_token in (api, staging_api):
        response = as_token.get(path) if path == "/agent" else as_token.post(path, {})
        api_error(response, 403, "agent_unavailable")


def test_resuming_a_paused_agent_lets_its_tokens_work_again(api: AgentApi, agent: Any) -> None:
    agent_update(actor=SYSTEM, agent=agent, status="paused")
    api_error(api.get("/agent"), 403, "agent_unavailable")
    agent_update(actor=SYSTEM, agent=agent, status="active")
    assert api.get("/agent").status_code == 200
