"""The overview: chart data per agent from rollups plus the minutes not rolled up yet,
the panels of what needs a person, and the live-polled endpoints; all limited to what
the person may view."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, agent_create, token_create
from oversight.core.selectors import CHART_AGENTS, CHART_MINUTES, overview_series
from oversight.gateway.constants import ActionStatus
from oversight.monitoring.models import AgentMinute, Alert
from oversight.monitoring.rollups import floor_minute
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, refund, refund_policy_create
from tests.monitoring.helpers import actions_at

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 4, 12, 30, 20, tzinfo=dt.UTC)


def _minute(agent: Agent, minutes_ago: int, now: dt.datetime = NOW, **counts: int) -> None:
    AgentMinute.objects.create(
        agent=agent, minute=floor_minute(now) - dt.timedelta(minutes=minutes_ago), **counts
    )


def _alert(agent: Agent, title: str, status: str = "open") -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        agent=agent,
        kind="volume",
        severity="critical",
        status=status,
        title=title,
        dedupe_key=title,
        opened_at=now,
        last_seen_at=now,
    )


# --- chart data --------------------------------------------------------------------------


def test_the_series_cover_the_last_hour_minute_by_minute(owner: Any, agent: Agent) -> None:
    data = overview_series(user=owner, now=NOW)
    assert len(data["x"]) == CHART_MINUTES
    assert data["x"][-1] == int(floor_minute(NOW).timestamp())
    assert data["x"][1] - data["x"][0] == 60
    assert data["agents"] == []  # nothing happened: no lines, zero totals
    assert data["totals"] == {"actions": 0, "denied": 0, "failed": 0}


def test_rollups_become_one_line_per_agent(owner: Any, agent: Agent) -> None:
    _minute(agent, 10, actions=7, denied=2, failed=1)
    _minute(agent, 59, actions=3)
    _minute(agent, 60, actions=100)  # older than the hour: left out
    data = overview_series(user=owner, now=NOW)
    assert data["agents"] == [{"slug": "refund-bot", "name": "Refund bot"}]
    (actions,) = data["series"]["actions"]
    assert actions[-11] == 7 and actions[0] == 3
    assert data["series"]["denied"][0][-11] == 2
    assert data["series"]["failed"][0][-11] == 1
    assert data["totals"] == {"actions": 10, "denied": 2, "failed": 1}


def test_the_minutes_not_rolled_up_yet_are_counted_from_the_actions(
    owner: Any, agent: Agent
) -> None:
    token, _ = token_create(actor=SYSTEM, agent=agent, environment="production")
    refund_policy_create(agent)
    decide(token, refund(100))
    decide(token, refund(100, charges=("ch_1", "ch_2")))  # forbidden: denied
    decide(token, refund(900))  # held
    now = timezone.now()
    actions_at(agent, now, 2, decision=ActionStatus.HALTED)  # the switch's, not counted
    # A stale rollup of the current minute (the job has not run since) is overridden.
    _minute(agent, 0, now=now, actions=1)
    data = overview_series(user=owner, now=now)
    assert data["totals"] == {"actions": 3, "denied": 1, "failed": 0}
    assert data["series"]["actions"][0][-1] + data["series"]["actions"][0][-2] == 3


def test_people_see_only_the_agents_they_may_view(
    owner: Any, outsider: Any, agent: Agent, other_agent: Agent
) -> None:
    _minute(agent, 5, actions=4)
    _minute(other_agent, 5, actions=9)
    mine = overview_series(user=owner, now=NOW)
    theirs = overview_series(user=outsider, now=NOW)
    assert [a["slug"] for a in mine["agents"]] == ["refund-bot"]
    assert [a["slug"] for a in theirs["agents"]] == ["email-campaigner"]
    assert theirs["totals"]["actions"] == 9


def test_past_the_busiest_agents_the_rest_are_one_line(
    admin_user: Any, team: Any, owner: Any
) -> None:
    for i in range(CHART_AGENTS + 2):
        bot = agent_create(
            actor=SYSTEM, name=f"Bot {i}", slug=f"bot-{i}", purpose="p", owner=owner, team=team
        )
        _minute(bot, 3, actions=10 + i, denied=1)
    data = overview_series(user=admin_user, now=NOW)
    names = [a["name"] for a in data["agents"]]
    assert len(names) == CHART_AGENTS + 1
    assert names[0] == f"Bot {CHART_AGENTS + 1}"  # the busiest first
    assert names[-1] == "Other agents"
    assert data["series"]["actions"][-1][-4] == 10 + 11  # bots 0 and 1
    assert data["series"]["denied"][-1][-4] == 2
    assert data["totals"]["actions"] == sum(10 + i for i in range(CHART_AGENTS + 2))


def test_the_data_endpoint_answers_json_for_the_person(
    client: Client, outsider: Any, agent: Agent
) -> None:
    _minute(agent, 1, now=timezone.now(), actions=4)
    client.force_login(outsider)
    response = client.get("/overview/data.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    assert response.json()["agents"] == []


def test_the_endpoints_need_a_login(client: Client) -> None:
    for url in ("/", "/overview/data.json", "/overview/panels/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- panels ------------------------------------------------------------------------------


def test_the_page_shows_charts_alerts_overdue_and_unowned_agents(
    client: Client, owner: Any, agent: Agent, other_agent: Agent
) -> None:
    _alert(agent, "Volume far above baseline")
    _alert(agent, "Old news", status="resolved")
    _alert(other_agent, "Not yours")
    Agent.objects.filter(pk=agent.pk).update(
        next_review_due=dt.date.today() - dt.timedelta(days=3),
        unowned_since=timezone.now() - dt.timedelta(days=1),
    )
    Agent.objects.filter(pk=other_agent.pk).update(
        next_review_due=dt.date.today() - dt.timedelta(days=3)
    )
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert 'id="overview-series"' in page
    assert 'id="chart-actions"' in page
    assert "uPlot-1.6.32.iife.min.js" in page
    assert "Volume far above baseline" in page
    assert "Old news" not in page and "Not yours" not in page
    overdue = page[page.index('id="panel-overdue"') : page.index('id="panel-unowned"')]
    assert "Refund bot" in overdue and "Email campaigner" not in overdue
    unowned = page[page.index('id="panel-unowned"') :]
    assert "Refund bot" in unowned
    # Each panel's heading links to its full list, whether or not every row fits.
    for panel, heading, url in (
        ("alerts", "Open alerts", "/alerts/"),
        ("overdue", "Overdue re-certifications", "/recertification/"),
        ("unowned", "Unowned agents", "/recertification/"),
    ):
        part = page[page.index(f'id="panel-{panel}"') :]
        assert f'<h2><a href="{url}">{heading}</a>' in part[:400]


def test_empty_panels_say_all_is_well(client: Client, owner: Any, agent: Agent) -> None:
    client.force_login(owner)
    page = client.get("/").content.decode()
    for text in (
        "No open alerts.",
        "Every re-certification is up to date.",
        "Every agent has an owner.",
    ):
        assert text in page
    assert "No actions in the last hour." in page


def test_the_panels_endpoint_carries_the_waiting_count_out_of_band(
    client: Client, agent: Agent, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    token_create(actor=SYSTEM, agent=agent, environment="production")
    refund_policy_create(agent)
    client.force_login(reviewer)
    before = client.get("/overview/panels/").content.decode()
    assert '<span class="waiting-count">0</span>' in before
    decide(agent.tokens.get(), refund(900))
    after = client.get("/overview/panels/").content.decode()
    assert 'id="overview-waiting" class="button primary"' in after
    assert 'hx-swap-oob="true"' in after
    assert '<span class="waiting-count">1</span>' in after
    assert 'id="panel-alerts"' in after


def test_the_page_renders_the_waiting_count_once(client: Client, owner: Any) -> None:
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert page.count('id="overview-waiting"') == 1
    assert 'hx-get="/overview/panels/"' in page
