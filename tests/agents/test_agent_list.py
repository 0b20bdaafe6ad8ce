"""The agent list: who sees which agents, the filters, and the htmx partial."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from oversight.agents.services import agent_access_grant, agent_create, agent_update
from oversight.agents.views import LIST_PAGE_SIZE
from tests.agents.many import many_agents
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

URL = reverse("agents:list")


def _listed(client: Client, user: Any, **params: str) -> str:
    client.force_login(user)
    response = client.get(URL, params)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def agents(agent: Any, other_agent: Any, team: Any, owner: Any) -> dict[str, Any]:
    """Two agents in the owner's team (one paused) and one in the outsider's."""
    paused = agent_create(
        actor=SYSTEM,
        name="Invoice reconciler",
        slug="invoice-reconciler",
        purpose="Matches incoming payments to open invoices.",
        owner=owner,
        team=team,
    )
    paused = agent_update(actor=SYSTEM, agent=paused, status="paused")
    return {"refund": agent, "invoice": paused, "email": other_agent}


def test_it_redirects_anonymous_visitors_to_login(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_owner_sees_their_teams_agents(client: Client, owner: Any, agents: Any) -> None:
    page = _listed(client, owner)
    assert "refund-bot" in page
    assert "invoice-reconciler" in page
    assert "email-campaigner" not in page


def test_a_teammate_sees_the_teams_agents(client: Client, teammate: Any, agents: Any) -> None:
    page = _listed(client, teammate)
    assert "refund-bot" in page
    assert "invoice-reconciler" in page
    assert "email-campaigner" not in page


def test_an_outsider_sees_only_their_own_agents(client: Client, outsider: Any, agents: Any) -> None:
    page = _listed(client, outsider)
    assert "email-campaigner" in page
    assert "refund-bot" not in page
    assert "Refund bot" not in page
    assert "invoice-reconciler" not in page


def test_an_admin_sees_every_agent(client: Client, admin_user: Any, agents: Any) -> None:
    page = _listed(client, admin_user)
    for slug in ("refund-bot", "invoice-reconciler", "email-campaigner"):
        assert slug in page


@pytest.mark.parametrize("level", ["reviewer", "viewer"])
def test_reviewers_and_auditors_see_only_agents_they_were_granted(
    client: Client, reviewer: Any, auditor: Any, agents: Any, level: str
) -> None:
    person = reviewer if level == "reviewer" else auditor
    agent_access_grant(actor=SYSTEM, agent=agents["refund"], user=person, level=level)
    page = _listed(client, person)
    assert "refund-bot" in page
    assert "invoice-reconciler" not in page
    assert "email-campaigner" not in page


def test_an_ungranted_reviewer_sees_the_empty_state(
    client: Client, reviewer: Any, agents: Any
) -> None:
    page = _listed(client, reviewer)
    assert "No agents match these filters." in page
    assert "refund-bot" not in page


def test_it_filters_by_team(client: Client, admin_user: Any, agents: Any) -> None:
    page = _listed(client, admin_user, team="growth")
    assert "email-campaigner" in page
    assert "refund-bot" not in page
    assert "invoice-reconciler" not in page


def test_it_filters_by_owner(client: Client, admin_user: Any, agents: Any) -> None:
    page = _listed(client, admin_user, owner="alice")
    assert "refund-bot" in page
    assert "invoice-reconciler" in page
    assert "email-campaigner" not in page


def test_it_filters_by_status(client: Client, owner: Any, agents: Any) -> None:
    page = _listed(client, owner, status="paused")
    assert "invoice-reconciler" in page
    assert "refund-bot" not in page


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("refund", "refund-bot"),  # name
        ("reconciler", "invoice-reconciler"),  # slug
        ("OPEN INVOICES", "invoice-reconciler"),  # purpose, any case
    ],
)
def test_it_searches_name_slug_and_purpose(
    client: Client, owner: Any, agents: Any, query: str, found: str
) -> None:
    page = _listed(client, owner, q=query)
    assert found in page
    others = {"refund-bot", "invoice-reconciler"} - {found}
    for slug in others:
        assert slug not in page


def test_search_never_reaches_agents_the_user_cannot_see(
    client: Client, owner: Any, agents: Any
) -> None:
    page = _listed(client, owner, q="marketing")
    assert "email-campaigner" not in page
    assert "No agents match these filters." in page


def test_a_reviewer_can_filter_granted_agents_by_team(
    client: Client, reviewer: Any, agents: Any
) -> None:
    """A reviewer is in no team, but should still narrow their granted agents by team."""
    agent_access_grant(actor=SYSTEM, agent=agents["refund"], user=reviewer, level="reviewer")
    agent_access_grant(actor=SYSTEM, agent=agents["email"], user=reviewer, level="reviewer")
    page = _listed(client, reviewer, team="growth")
    assert "email-campaigner" in page
    assert "refund-bot" not in page


def test_a_filter_value_outside_the_users_choices_matches_nothing(
    client: Client, outsider: Any, agents: Any
) -> None:
    """Asking for another team's agents must not silently drop the filter."""
    page = _listed(client, outsider, team="payments")
    assert "email-campaigner" not in page
    assert "No agents match these filters." in page


def test_an_empty_result_shows_the_empty_state(client: Client, owner: Any, agents: Any) -> None:
    page = _listed(client, owner, q="no-such-agent-anywhere")
    assert "No agents match these filters." in page
    assert "0 agents" in page
    assert "<table" not in page


def test_htmx_requests_get_only_the_table_partial(client: Client, owner: Any, agents: Any) -> None:
    client.force_login(owner)
    response = client.get(URL, {"q": "refund"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page
    assert 'id="agent-table"' in page
    assert "refund-bot" in page
    assert "invoice-reconciler" not in page


def test_a_normal_request_gets_the_full_page(client: Client, owner: Any, agents: Any) -> None:
    page = _listed(client, owner)
    assert "<html" in page
    assert 'id="agent-table"' in page


def test_a_large_registry_comes_a_page_at_a_time_in_the_same_queries(
    client: Client, admin_user: Any, team: Any, owner: Any, django_assert_max_num_queries: Any
) -> None:
    """Owners, teams, states and review dates are read with the page, not per row."""
    client.force_login(admin_user)
    many_agents(team=team, owner=owner, n=10)
    client.get(URL)  # warm caches (session, content types)
    with CaptureQueriesContext(connection) as small:
        client.get(URL)
    many_agents(team=team, owner=owner, n=2 * LIST_PAGE_SIZE + 5, prefix="more")
    with django_assert_max_num_queries(len(small)):
        page = client.get(URL).content.decode()
    total = 2 * LIST_PAGE_SIZE + 15
    assert f"{total} agents" in page
    assert page.count('<td><a href="/agents/') == LIST_PAGE_SIZE
    assert f"; {total - LIST_PAGE_SIZE} more (search or filter to find one)." in page
    last = client.get(URL, {"page": "3", "team": team.slug}).content.decode()
    assert last.count('<td><a href="/agents/') == 15
    assert "Previous page" in last and "Next page" not in last


def test_the_next_and_previous_page_links_lead_there(
    client: Client, admin_user: Any, team: Any, owner: Any
) -> None:
    """They read "??page=2", which browsers took for page 1 again."""
    client.force_login(admin_user)
    many_agents(team=team, owner=owner, n=LIST_PAGE_SIZE + 5)
    first = client.get(URL, {"team": team.slug}).content.decode()
    found = re.search(r'<a href="([^"]*)"[^>]*>Next page</a>', first)
    assert found is not None
    assert found.group(1) == "?team=payments&amp;page=2", found.group(1)
    second = client.get(URL + html.unescape(found.group(1))).content.decode()
    assert f"Showing {LIST_PAGE_SIZE + 1}\u2013" in second
    back = re.search(r'<a href="([^"]*)"[^>]*>Previous page</a>', second)
    assert back is not None
    assert "Showing 1\u2013" in client.get(URL + html.unescape(back.group(1))).content.decode()
