"""The agent detail page: who may see it, and the readable history of changes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.services import agent_access_grant, agent_update
from oversight.audit.actors import Actor
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def _url(agent: Any) -> str:
    return reverse("agents:detail", args=[agent.slug])


def _get(client: Client, user: Any, agent: Any) -> Any:
    client.force_login(user)
    return client.get(_url(agent))


def _diff_row(page: str, label: str, old: str, new: str) -> re.Match[str] | None:
    pattern = (
        rf"<th>{re.escape(label)}</th>\s*"
        rf'<td class="old">{re.escape(old)}</td>\s*'
        r'<td class="arrow">→</td>\s*'
        rf'<td class="new">{re.escape(new)}</td>'
    )
    return re.search(pattern, page)


def test_it_redirects_anonymous_visitors_to_login(client: Client, agent: Any) -> None:
    response = client.get(_url(agent))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_owner_sees_the_agent_and_may_edit_it(client: Client, owner: Any, agent: Any) -> None:
    response = _get(client, owner, agent)
    assert response.status_code == 200
    assert "Issues refunds for support tickets." in response.content.decode()
    assert response.context["can_change"] is True


def test_a_teammate_sees_the_agent_but_no_edit_link(
    client: Client, teammate: Any, agent: Any
) -> None:
    response = _get(client, teammate, agent)
    assert response.status_code == 200
    assert response.context["can_change"] is False
    assert reverse("agents:edit", args=[agent.slug]) not in response.content.decode()


def test_an_admin_sees_any_agent(client: Client, admin_user: Any, agent: Any) -> None:
    response = _get(client, admin_user, agent)
    assert response.status_code == 200
    assert response.context["can_change"] is True


def test_a_granted_reviewer_sees_the_agent(client: Client, reviewer: Any, agent: Any) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    response = _get(client, reviewer, agent)
    assert response.status_code == 200
    assert response.context["can_change"] is False


@pytest.mark.parametrize("who", ["outsider", "reviewer"])
def test_people_without_access_get_a_404_that_leaks_nothing(
    client: Client, request: pytest.FixtureRequest, agent: Any, who: str
) -> None:
    response = _get(client, request.getfixturevalue(who), agent)
    assert response.status_code == 404
    page = response.content.decode()
    assert "Refund bot" not in page
    assert "Issues refunds" not in page


def _without_csrf(body: bytes) -> bytes:
    """Leaves out the CSRF tokens, and the kill-switch menu's way back (the address the
    person asked for, as typed)."""
    body = re.sub(rb'"X-CSRFToken": "[^"]+"', b"", body)
    body = re.sub(rb'name="next" value="[^"]+"', b"", body)
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", body)


def test_an_existing_hidden_agent_looks_like_a_missing_one(
    client: Client, outsider: Any, agent: Any
) -> None:
    client.force_login(outsider)
    hidden = client.get(_url(agent))
    missing = client.get(reverse("agents:detail", args=["no-such-agent"]))
    assert hidden.status_code == missing.status_code == 404
    # Each response masks the CSRF token differently; everything else must be identical.
    assert _without_csrf(hidden.content) == _without_csrf(missing.content)


def test_it_shows_the_creation_in_the_history(client: Client, owner: Any, agent: Any) -> None:
    page = _get(client, owner, agent).content.decode()
    assert "agent.created" in page
    assert "system:tests" in page


def test_the_history_shows_a_readable_diff_after_an_edit(
    client: Client, owner: Any, admin_user: Any, agent: Any, outsider: Any
) -> None:
    agent_update(actor=Actor.for_user(admin_user), agent=agent, risk_tier="low", owner=outsider)
    page = _get(client, admin_user, agent).content.decode()
    assert "agent.updated" in page
    assert "by <strong>ada</strong>" in page
    assert _diff_row(page, "Risk tier", "high", "low"), page
    assert _diff_row(page, "Owner", "alice", "mallory"), page
    # Fields that did not change are not listed in the update's diff.
    updated = page.split("agent.updated", 1)[1].split("agent.created", 1)[0]
    assert "<th>Purpose</th>" not in updated


def test_the_history_is_newest_first(client: Client, owner: Any, agent: Any) -> None:
    agent_update(actor=Actor.for_user(owner), agent=agent, name="Refund bot v2")
    page = _get(client, owner, agent).content.decode()
    assert page.index("agent.updated") < page.index("agent.created")


def test_names_and_history_values_are_escaped(client: Client, owner: Any, agent: Any) -> None:
    script = "<script>alert(1)</script>"
    agent_update(actor=Actor.for_user(owner), agent=agent, name=script, purpose=script)
    page = _get(client, owner, agent).content.decode()
    assert script not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_hold_of_every_action_shows_where_the_agent_is_listed_and_on_its_page(
    client: Client, owner: Any, agent: Any
) -> None:
    """While monitoring held every action for a person, the page said "Active"."""
    from oversight.agents.models import Agent

    reason = "Alert #2: 1517 actions in 5 minutes (no baseline yet)"
    Agent.objects.filter(pk=agent.pk).update(hold_all=True, hold_all_reason=reason)
    client.force_login(owner)
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert f'<span class="pill status-paused" title="{reason}">Every action held</span>' in page
    assert f"Every action of Refund bot is held for a person: {reason}." in page
    assert f'href="/alerts/?agent={agent.slug}"' in page
    listed = client.get(reverse("agents:list")).content.decode()
    assert ">Every action held</span>" in listed
