"""The overview in Chromium: charts drawn by the vendored uPlot, the panels of what needs a
person, and the waiting count following a held action without a reload; the inbox's
badge and mark-read.

Screenshots go to /tmp/oversight-shots (overview.png, inbox.png) for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.monitoring.models import AgentMinute, Alert
from oversight.monitoring.rollups import floor_minute
from oversight.notifications.constants import Kind
from oversight.notifications.services import notify_people
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, refund, refund_policy_create

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SHOTS = Path(tempfile.gettempdir()) / "oversight-shots"
RECORD_SOCKET_OPEN = (
    "document.addEventListener('htmx:wsOpen', () => { window.__socketOpen = true; });"
)
# The panels poll every 15 s; a message on the live socket refreshes them sooner.
LIVE_TIMEOUT_MS = 20_000


def _log_in(page: Page, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(url)


def _traffic(agent: Agent, other: Agent) -> None:
    """An hour of rollups: steady traffic with a burst, denials and a few failures."""
    now = floor_minute(timezone.now())
    for i in range(2, 60):
        burst = 25 if 20 <= i <= 24 else 0
        AgentMinute.objects.create(
            agent=agent,
            minute=now - dt.timedelta(minutes=i),
            actions=6 + i % 4 + burst,
            allowed=5 + i % 4,
            denied=1 + burst // 5,
            failed=1 if i % 9 == 0 else 0,
        )
        AgentMinute.objects.create(
            agent=other, minute=now - dt.timedelta(minutes=i), actions=3 + i % 3, denied=i % 2
        )


@pytest.fixture
def scene(agent: Agent, other_agent: Agent, reviewer: Any) -> dict[str, Any]:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    agent_access_grant(actor=SYSTEM, agent=other_agent, user=reviewer, level="viewer")
    refund_policy_create(agent)
    token, _ = token_create(actor=SYSTEM, agent=agent, environment="production")
    _traffic(agent, other_agent)
    now = timezone.now()
    Alert.objects.create(
        agent=agent,
        kind="volume",
        severity="critical",
        title="Volume far above baseline: 31 actions in a minute",
        dedupe_key="volume",
        opened_at=now,
        last_seen_at=now,
    )
    Agent.objects.filter(pk=agent.pk).update(next_review_due=dt.date.today() - dt.timedelta(days=4))
    Agent.objects.filter(pk=other_agent.pk).update(unowned_since=now - dt.timedelta(days=2))
    return {"token": token}


def test_the_overview_draws_charts_and_follows_a_held_action_live(
    page: Page, live_url: str, reviewer: Any, scene: dict[str, Any]
) -> None:
    page.context.add_init_script(RECORD_SOCKET_OPEN)
    _log_in(page, f"{live_url}/", reviewer.username)
    page.wait_for_function("window.__socketOpen === true")
    page.evaluate("window.__marker = 1")  # a reload would wipe this out

    for series in ("actions", "denied", "failed"):
        expect(page.locator(f"#chart-{series} canvas")).to_be_visible()
    legend = page.locator("#chart-actions .u-legend")
    expect(legend).to_contain_text("Refund bot")
    expect(legend).to_contain_text("Email campaigner")
    expect(page.locator("#chart-actions .total")).not_to_have_text("0 in the hour")
    # Times read in UTC on a 24-hour clock, as everywhere else (they read "6:30pm").
    page.locator("#chart-actions .u-over").hover()
    expect(legend.locator(".u-series").first.locator(".u-value")).to_have_text(
        re.compile(r"^\d\d:\d\d UTC$")
    )
    expect(page.locator("#panel-alerts")).to_contain_text("Volume far above baseline")
    expect(page.locator("#panel-overdue")).to_contain_text("Refund bot")
    expect(page.locator("#panel-unowned")).to_contain_text("Email campaigner")
    expect(page.locator("#overview-waiting .waiting-count")).to_have_text("0")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

    action = decide(scene["token"], refund(900))
    assert action.status == "pending"
    expect(page.locator("#overview-waiting .waiting-count")).to_have_text(
        "1", timeout=LIVE_TIMEOUT_MS
    )
    expect(page.locator("#overview-waiting")).to_have_class("button primary")
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    page.screenshot(path=str(SHOTS / "overview-waiting.png"))


def test_an_empty_overview_says_so(page: Page, live_url: str, outsider: Any) -> None:
    _log_in(page, f"{live_url}/", outsider.username)
    expect(page.locator("#chart-actions canvas")).to_be_visible()
    expect(page.get_by_text("No actions in the last hour.")).to_be_visible()
    expect(page.get_by_text("No open alerts.")).to_be_visible()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "overview-empty.png"), full_page=True)


def test_the_inbox_badge_counts_down_as_items_are_read(
    page: Page, live_url: str, owner: Any, team: Any, agent: Agent
) -> None:
    for i, title in enumerate(
        ("Re-certification of Refund bot due in 7 days", "Refund bot paused")
    ):
        notify_people(
            kind=Kind.REVIEW_DUE if i == 0 else Kind.AGENT_PAUSED,
            team=team,
            users=[owner],
            title=title,
            body="Re-certify its purpose and access." if i == 0 else "Its review is overdue.",
            link=f"/recertification/{agent.slug}/",
            event=f"browser:{i}",
            agent=agent,
        )
    _log_in(page, f"{live_url}/inbox/", owner.username)
    badge = page.locator("#inbox-badge")
    expect(badge).to_have_text("2")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "inbox.png"), full_page=True)
    page.locator(".inbox-item").first.get_by_role("button", name="Mark read").click()
    expect(badge).to_have_text("1")
    expect(page.locator(".inbox-item.unread")).to_have_count(1)
    page.get_by_role("button", name="Mark all read").click()
    expect(page.get_by_text("Marked 1 item read.")).to_be_visible()
    expect(badge).to_be_hidden()
