"""The behaviour diff in Chromium: from an older release's page, one click compares it with
the stable release and shows what is flagged; on a phone the page does not scroll
sideways; a side that is not one says so on the page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from oversight.agents.models import Agent
from tests.browser.test_phone_layout import assert_no_sideways_scroll
from tests.browser.test_registry_flow import log_in
from tests.browser.ui import OUT_OF_REACH, PHONE, shot
from tests.incidents.behaviour_data import record, refund_row, two_releases

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_owner_compares_an_older_release_with_stable_from_its_page(
    page: Page, browser: Browser, live_url: str, owner: Any, agent: Agent
) -> None:
    old, new = two_releases(agent)
    record(agent, 400, lambda rng: refund_row(rng, deny=0.02), version=old, seed=1)
    record(agent, 400, lambda rng: refund_row(rng, deny=0.3), version=new, seed=2)

    page.goto(f"{live_url}/agents/{agent.slug}/releases/{old}/")
    log_in(page, owner.username)
    page.get_by_role("link", name="Compare behaviour with the stable release").click()

    expect(page.get_by_role("heading", name=f"Behaviour: v{new} → v{old}")).to_be_visible()
    summary = page.locator("section", has=page.get_by_role("heading", name="Summary"))
    expect(summary).to_contain_text("400 decisions on the left")
    flagged = summary.get_by_role("listitem").filter(has_text="decision denied")
    expect(flagged).to_contain_text("flagged: significant after correction")
    decisions = page.locator("section", has=page.get_by_role("heading", name="Decisions and"))
    expect(decisions.locator("tr.flagged", has_text="denied")).to_be_visible()
    shot(page, "behaviour-diff")

    phone = browser.new_context(viewport=PHONE)
    small = phone.new_page()
    small.goto(f"{live_url}/agents/{agent.slug}/behaviour/?left=v{new}&right=v{old}")
    log_in(small, owner.username)
    expect(small.get_by_role("heading", name=f"Behaviour: v{new} → v{old}")).to_be_visible()
    assert_no_sideways_scroll(small, "the behaviour diff")
    assert small.evaluate(OUT_OF_REACH) == []  # its tables read as stacked rows
    shot(small, "phone-behaviour-diff")
    phone.close()

    page.get_by_label("Left").fill("yesterday")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Left: 'yesterday' is neither a release like v3 nor a window like "
        "2026-12-01T10:00/2026-12-01T11:00 or 2h/1h."
    )
    expect(page.get_by_label("Left")).to_have_attribute("aria-invalid", "true")
