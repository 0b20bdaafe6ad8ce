"""The queue's filters (agent, team, risk), its compact list, its pages, and a number of
queries that does not grow with the queue."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from oversight.agents.services import agent_access_grant
from oversight.approvals.selectors import LIST_PAGE_SIZE, PAGE_SIZE, queue_item_contexts
from tests.approvals.held import held_actions
from tests.conftest import SYSTEM
from tests.monitoring.helpers import actions_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_agents_held(agent: Any, other_agent: Any, rita: Any) -> tuple[list[Any], list[Any]]:
    """Rita may decide both agents: the refund bot (payments, high risk) and the email
    campaigner (growth, medium risk)."""
    agent_access_grant(actor=SYSTEM, agent=other_agent, user=rita, level="reviewer")
    return held_actions(agent, 2), held_actions(other_agent, 3)


def _queue(client: Client, user: Any, **params: str) -> str:
    client.force_login(user)
    response = client.get(reverse("approvals:queue"), params)
    assert response.status_code == 200
    return response.content.decode()


def _shown(page: str, actions: list[Any]) -> list[bool]:
    return [f'id="queue-{a.pk}"' in page for a in actions]


@pytest.mark.parametrize(
    ("params", "refunds", "emails"),
    [
        ({}, True, True),
        ({"agent": "refund-bot"}, True, False),
        ({"team": "growth"}, False, True),
        ({"risk": "high"}, True, False),
        ({"risk": "medium", "team": "payments"}, False, False),
        ({"agent": "no-such-agent"}, False, False),  # an old link: nothing, not everything
    ],
)
def test_it_filters_by_agent_team_and_risk(
    client: Client,
    rita: Any,
    two_agents_held: Any,
    params: dict[str, str],
    refunds: bool,
    emails: bool,
) -> None:
    mine, theirs = two_agents_held
    page = _queue(client, rita, **params)
    assert _shown(page, mine) == [refunds] * 2
    assert _shown(page, theirs) == [emails] * 3


def test_the_filters_are_labelled_and_say_what_the_socket_shows(
    client: Client, rita: Any, agent: Any, two_agents_held: Any
) -> None:
    page = _queue(client, rita, team="payments", risk="high", agent="refund-bot")
    for label in ("Agent", "Team", "Risk", "Show as"):
        assert f"{label} <select" in page or f"<legend>{label}</legend>" in page
    socket = f"/ws/live/?show=queue&amp;agent={agent.pk}&amp;risk=high&amp;team=payments"
    assert f'ws-connect="{socket}"' in page
    assert '<option value="refund-bot" selected>Refund bot</option>' in page


def test_an_agent_the_person_may_not_decide_gets_no_socket_id(
    client: Client, reviewer: Any, other_agent: Any
) -> None:
    held_actions(other_agent, 1)
    page = _queue(client, reviewer, agent="email-campaigner")
    assert 'ws-connect="/ws/live/?show=queue&amp;agent=0"' in page
    assert "Nothing that matches these filters is waiting for you." in page


def test_the_compact_list_is_a_line_per_held_action_with_approve(
    client: Client, rita: Any, two_agents_held: Any
) -> None:
    page = _queue(client, rita, view="list", agent="refund-bot")
    assert 'id="approval-list"' in page and 'id="approval-queue"' not in page
    assert page.count('class="queue-row ') == 2
    assert 'ws-connect="/ws/live/?show=queue-list&amp;agent=' in page
    assert 'name="view" value="list" checked' in page


def test_a_vote_from_the_compact_list_returns_its_row(
    client: Client, rita: Any, two_agents_held: Any
) -> None:
    action = two_agents_held[0][0]
    client.force_login(rita)
    url = reverse("approvals:vote", args=[action.pk])
    body = {"vote": "approve", "view": "list", "request_hash": action.request_hash}
    response = client.post(url, body, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<li") and 'class="queue-row ' in html
    assert "Approved" in html and "<button" not in html


def test_an_htmx_filter_change_swaps_the_region_with_its_socket(
    client: Client, rita: Any, two_agents_held: Any
) -> None:
    client.force_login(rita)
    response = client.get(reverse("approvals:queue"), {"team": "growth"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    socket = "/ws/live/?show=queue&amp;team=growth"
    assert html.startswith(f'<div id="approval-region" tabindex="-1" ws-connect="{socket}"')
    assert "<html" not in html


def test_a_long_queue_comes_a_page_at_a_time_and_says_how_many_more(
    client: Client, rita: Any, agent: Any
) -> None:
    actions = held_actions(agent, PAGE_SIZE + 7)
    first = _queue(client, rita)
    assert first.count('class="card queue-item') == PAGE_SIZE
    assert f"Showing 1\N{EN DASH}{PAGE_SIZE} of {PAGE_SIZE + 7}; 7 more" in first
    assert _shown(first, actions[:1]) == [True]  # most urgent first
    second = _queue(client, rita, page="2")
    assert second.count('class="card queue-item') == 7
    assert _shown(second, actions[-1:]) == [True]
    assert "Previous page" in second
    assert _queue(client, rita, page="99").count('class="card queue-item') == 7  # the last
    assert _queue(client, rita, page="x").count('class="card queue-item') == PAGE_SIZE
    assert _queue(client, rita, view="list").count('class="queue-row ') == PAGE_SIZE + 7


@pytest.mark.parametrize("view", ["cards", "list"])
def test_the_queue_costs_the_same_queries_for_ten_or_many_held_actions(
    client: Client,
    rita: Any,
    agent: Any,
    other_agent: Any,
    view: str,
    django_assert_max_num_queries: Any,
) -> None:
    """Votes, owners, teams and recent actions are read for the whole page at once."""
    agent_access_grant(actor=SYSTEM, agent=other_agent, user=rita, level="reviewer")
    client.force_login(rita)
    url = reverse("approvals:queue")
    held_actions(agent, 5)
    held_actions(other_agent, 5)
    client.get(url, {"view": view})  # warm caches (session, content types)
    with CaptureQueriesContext(connection) as small:
        client.get(url, {"view": view})
    held_actions(agent, LIST_PAGE_SIZE)
    held_actions(other_agent, LIST_PAGE_SIZE)
    with django_assert_max_num_queries(len(small)):
        response = client.get(url, {"view": view})
    shown = PAGE_SIZE if view == "cards" else LIST_PAGE_SIZE
    assert response.content.decode().count('id="queue-') == shown


def test_each_card_lists_its_agents_five_newest_other_actions(
    client: Client, rita: Any, agent: Any, other_agent: Any
) -> None:
    """Read for the whole page at once, newest first, without the card's own action."""
    agent_access_grant(actor=SYSTEM, agent=other_agent, user=rita, level="reviewer")
    old = actions_at(agent, timezone.now() - dt.timedelta(hours=1), 3, action="crm.ticket.old")
    new = actions_at(agent, timezone.now() - dt.timedelta(minutes=1), 4, action="crm.ticket.new")
    first, second = held_actions(agent, 2)
    lonely = held_actions(other_agent, 1)[0]
    contexts = {c["action"].pk: c for c in queue_item_contexts([first, second, lonely])}
    recent = [a.pk for a in contexts[first.pk]["recent"]]
    # The held ones are the newest, then the four new ones; the old ones are too old.
    assert recent[0] == second.pk and len(recent) == 5
    assert set(recent[1:]) == {a.pk for a in new}
    assert not {a.pk for a in old} & set(recent)
    assert [a.pk for a in contexts[lonely.pk]["recent"]] == []
    page = _queue(client, rita)
    assert page.count("crm.ticket.new") == 2 * 4 and "crm.ticket.old" not in page
