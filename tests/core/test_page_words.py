"""States and values read the same on every page: a halted agent says so, a reviewer's
deny reads as denied, durations and state after read as words and JSON."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.models import AgentToken
from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from oversight.gateway.models import Action
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, limit_create, refund, refund_policy_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(agent: Any) -> AgentToken:
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


def test_an_agent_halted_by_its_teams_switch_reads_halted_on_its_pages(
    client: Client, admin_user: Any, agent: Any
) -> None:
    killswitch_engage(actor=SYSTEM, target=Target("team", team=agent.team), reason="bad deploy")
    client.force_login(admin_user)
    for url in (
        reverse("agents:detail", args=[agent.slug]),
        reverse("agents:list"),
        reverse("reviews:list"),
        reverse("reviews:agent", args=[agent.slug]),
    ):
        page = client.get(url).content.decode()
        assert '<span class="pill status-halted"' in page, url
        assert '<span class="pill status-active">' not in page, url


def test_a_reviewers_deny_reads_denied_by_a_reviewer(
    client: Client,
    agent: Any,
    token: Any,
    reviewer: Any,
) -> None:
    refund_policy_create(agent)
    held = decide(token, refund(900))
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    approval_vote(user=reviewer, action_id=held.pk, vote="deny", comment="too much")
    client.force_login(reviewer)
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert "Denied by a reviewer" in page and "Rejected" not in page


def test_the_state_after_reads_as_json(client: Client, agent: Any, token: Any, owner: Any) -> None:
    refund_policy_create(agent)
    action = decide(token, refund(100))
    Action.objects.filter(pk=action.pk).update(status="succeeded", after={"ok": True, "x": None})
    client.force_login(owner)
    page = client.get(reverse("approvals:action", args=[action.pk])).content.decode()
    after = page.split("<h3>State after</h3>", 1)[1].split("</pre>", 1)[0]
    assert after == '<pre class="json">{\n  &quot;ok&quot;: true,\n  &quot;x&quot;: null\n}'


def test_hold_times_and_limit_windows_read_in_words(client: Client, agent: Any, owner: Any) -> None:
    refund_policy_create(agent, expires_in_seconds=900)
    limit_create(agent=agent, max_count=5, window_seconds=3600)
    client.force_login(owner)
    page = client.get(reverse("policy:page", args=[agent.slug])).content.decode()
    assert "1 approval from anyone with approve access, 15 minutes" in page
    assert "900s" not in page
    assert '<td data-label="Per">1 hour</td>' in page
