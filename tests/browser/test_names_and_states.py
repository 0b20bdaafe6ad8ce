"""Names and states as people read them, in Chromium: a reviewer's deny reads "Denied by a
reviewer" (policy's is "Denied"), a halted agent says so, hold times read "15 minutes",
the state after is JSON, a moment ago is "just now", and the nav's Alerts and
Re-certification lead to pages of those names."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.gateway.models import Action
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage
from tests.browser.ui import World, log_in, make_world, shot
from tests.conftest import SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(agent: Any, other_agent: Any, reviewer: Any, auditor: Any, admin_user: Any) -> World:
    return make_world(agent, reviewer, auditor)


def test_a_reviewers_deny_reads_denied_beside_the_policys(
    page: Page, live_url: str, world: World
) -> None:
    log_in(page, live_url, "rita", "/approvals/")
    card = page.locator(f"#queue-{world.held.pk}")
    card.get_by_label("Comment").fill("Refunded by hand already.")
    card.get_by_role("button", name="Deny").click()
    # Decided: the card shows its new state, or has already left the queue (live).
    expect(card.get_by_role("button", name="Deny")).to_have_count(0)
    page.goto(f"{live_url}/actions/{world.held.pk}/")
    expect(page.locator("h1 .pill")).to_have_text("Denied by a reviewer")
    expect(page.locator(".history")).to_contain_text(
        "Waiting for approval → Denied by a reviewer: “Refunded by hand already.”"
    )
    page.goto(f"{live_url}/agents/{world.agent.slug}/")
    feed = page.locator(f"#agent-{world.agent.pk}-feed")
    expect(feed.locator(".pill.status-denied").first).to_have_text("Denied")
    expect(feed.locator(".pill.status-rejected")).to_have_text("Denied by a reviewer")
    shot(page, "names-agent-feed")


def test_durations_json_and_moments_read_as_words(page: Page, live_url: str, world: World) -> None:
    done = Action.objects.filter(agent=world.agent, status="allowed").first()
    assert done is not None
    Action.objects.filter(pk=done.pk).update(status="succeeded", after={"refunded": True})
    log_in(page, live_url, "alice", f"/agents/{world.agent.slug}/policy/")
    expect(page.locator("#rules")).to_contain_text(
        "1 approval from anyone with approve access, 15 minutes"
    )
    expect(page.locator("#limits")).to_contain_text("1 hour")
    expect(page.locator("body")).not_to_contain_text("900s")
    page.goto(f"{live_url}/actions/{done.pk}/")
    expect(page.locator("pre.json").last).to_have_text('{\n  "refunded": true\n}')
    page.goto(f"{live_url}/")
    expect(page.locator("#panel-alerts")).to_contain_text("just now")
    expect(page.locator("#panel-alerts")).not_to_contain_text("0 minutes ago")


def test_a_halted_agent_says_so_wherever_its_state_shows(
    page: Page, live_url: str, world: World
) -> None:
    killswitch_engage(actor=SYSTEM, target=Target("team", team=world.agent.team), reason="drill")
    log_in(page, live_url, "alice", "/agents/")
    row = page.locator("#agent-table tr", has_text="Refund bot")
    expect(row.locator(".pill.status-halted")).to_have_text("Halted by a kill switch")
    page.goto(f"{live_url}/recertification/")
    expect(page.locator("#review-schedule .pill.status-halted")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Active")


def test_the_navs_names_and_the_pages_agree(page: Page, live_url: str, world: World) -> None:
    log_in(page, live_url, "alice")
    page.get_by_role("link", name="Alerts", exact=True).click()
    expect(page).to_have_url(f"{live_url}/alerts/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
    page.get_by_role("link", name="Re-certification", exact=True).click()
    expect(page).to_have_url(f"{live_url}/recertification/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Re-certification")
    expect(page.get_by_role("link", name="Reviews")).to_have_count(0)
    page.goto(f"{live_url}/monitoring/")  # a bookmark of before
    expect(page).to_have_url(f"{live_url}/alerts/")
    page.goto(f"{live_url}/reviews/{world.agent.slug}/")
    expect(page).to_have_url(f"{live_url}/recertification/{world.agent.slug}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Re-certification of Refund bot")
