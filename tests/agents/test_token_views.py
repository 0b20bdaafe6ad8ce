"""API tokens in the browser: shown once, hashed at rest, rotated and revoked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.models import AgentToken
from oversight.agents.services import token_create
from oversight.agents.tokens import token_hash
from oversight.audit.models import AuditEvent
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def _create(client: Client, user: Any, agent: Any, env: str = "production") -> Any:
    client.force_login(user)
    return client.post(
        reverse("agents:token-create", args=[agent.slug]),
        {"environment": env},
        HTTP_HX_REQUEST="true",
    )


def _raw(response: Any) -> str:
    body = response.content.decode()
    start = body.index('id="new-token">') + len('id="new-token">')
    return body[start : body.index("</code>", start)]


def test_the_owner_gets_a_token_shown_once_and_stored_as_a_hash(
    client: Client, owner: Any, agent: Any
) -> None:
    response = _create(client, owner, agent)
    raw = _raw(response)
    assert raw.startswith("ovs_prod_") and len(raw) > 40
    assert "no-store" in response["Cache-Control"]
    token = AgentToken.objects.get()
    assert token.token_hash == token_hash(raw)
    assert raw not in str(list(AgentToken.objects.values()))
    assert AuditEvent.objects.filter(verb="token.created", after__token=token.prefix).exists()
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert token.prefix in page and raw not in page


def test_a_teammate_may_not_issue_tokens_or_see_the_panel(
    client: Client, teammate: Any, agent: Any
) -> None:
    assert _create(client, teammate, agent).status_code == 403
    assert (
        'id="agent-tokens"'
        not in client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    )
    assert not AgentToken.objects.exists()


def test_an_outsider_gets_404(client: Client, outsider: Any, agent: Any) -> None:
    assert _create(client, outsider, agent).status_code == 404


def test_an_environment_the_agent_is_not_registered_for_is_refused(
    client: Client, owner: Any, other_agent: Any
) -> None:
    # other_agent is staging-only (the default)
    client.force_login(other_agent.owner)
    response = client.post(
        reverse("agents:token-create", args=[other_agent.slug]),
        {"environment": "production"},
        HTTP_HX_REQUEST="true",
    )
    assert "not registered for production" in response.content.decode()
    assert not AgentToken.objects.exists()


def test_rotating_revokes_the_old_token_and_shows_a_new_one(
    client: Client, owner: Any, agent: Any
) -> None:
    old, _raw_old = token_create(actor=SYSTEM, agent=agent, environment="production")
    client.force_login(owner)
    response = client.post(
        reverse("agents:token-rotate", args=[agent.slug, old.pk]), HTTP_HX_REQUEST="true"
    )
    new_raw = _raw(response)
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert AgentToken.objects.get(revoked_at__isnull=True).token_hash == token_hash(new_raw)


def test_issuing_rotating_and_revoking_have_the_pages_history_read_again(
    client: Client, owner: Any, agent: Any
) -> None:
    issued = _create(client, owner, agent)
    assert json.loads(issued["HX-Trigger"]).keys() == {"agent-history-changed"}
    for view in ("agents:token-rotate", "agents:token-revoke"):
        url = reverse(view, args=[agent.slug, AgentToken.objects.get(revoked_at=None).pk])
        answer = client.post(url, HTTP_HX_REQUEST="true")
        assert json.loads(answer["HX-Trigger"]).keys() == {"agent-history-changed"}, view
    assert not AgentToken.objects.filter(revoked_at=None).exists()


def test_revoking_twice_records_once(client: Client, owner: Any, agent: Any) -> None:
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    client.force_login(owner)
    url = reverse("agents:token-revoke", args=[agent.slug, token.pk])
    client.post(url, HTTP_HX_REQUEST="true")
    client.post(url, HTTP_HX_REQUEST="true")
    assert AuditEvent.objects.filter(verb="token.revoked").count() == 1


def test_another_agents_token_cannot_be_revoked_through_this_agent(
    client: Client, owner: Any, agent: Any, other_agent: Any
) -> None:
    foreign, _raw = token_create(actor=SYSTEM, agent=other_agent, environment="staging")
    client.force_login(owner)
    assert (
        client.post(reverse("agents:token-revoke", args=[agent.slug, foreign.pk])).status_code
        == 404
    )
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_a_bad_name_is_said_and_without_htmx_too(client: Client, owner: Any, agent: Any) -> None:
    client.force_login(owner)
    url = reverse("agents:token-create", args=[agent.slug])
    long_name = {"environment": "production", "name": "x" * 150}
    response = client.post(url, long_name, HTTP_HX_REQUEST="true")
    assert "Name: Ensure this value has at most 100 characters" in response.content.decode()
    page = client.post(url, long_name, follow=True).content.decode()
    assert "Name: Ensure this value has at most 100 characters" in page
    page = client.post(url, {"environment": "production", "name": "undo (Oversight)"}, follow=True)
    assert "is Oversight&#x27;s own token; choose another name" in page.content.decode()
    assert not AgentToken.objects.exists()


def test_only_the_agents_environments_are_offered(client: Client, owner: Any, agent: Any) -> None:
    from oversight.agents.services import agent_update

    agent_update(actor=SYSTEM, agent=agent, environments=["production"])
    client.force_login(owner)
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    panel = page[page.index('id="agent-tokens"') :]
    assert '<option value="production"' in panel and '<option value="staging"' not in panel


def test_the_undo_token_is_marked_and_not_rotated(client: Client, owner: Any, agent: Any) -> None:
    from oversight.agents.constants import UNDO_TOKEN_NAME

    token, _ = token_create(
        actor=SYSTEM, agent=agent, environment="production", name=UNDO_TOKEN_NAME
    )
    client.force_login(owner)
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert "Oversight's own, to decide undos" in page
    assert reverse("agents:token-rotate", args=[agent.slug, token.pk]) not in page
    response = client.post(
        reverse("agents:token-rotate", args=[agent.slug, token.pk]), HTTP_HX_REQUEST="true"
    )
    assert "is not rotated: revoke it" in response.content.decode()
    assert AgentToken.objects.get(pk=token.pk).revoked_at is None
