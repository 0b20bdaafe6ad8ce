"""An agent's History as its owner uses it, in Chromium against the real server: a grant
change found among 200 decisions, the filter, and Older pages (issue 13, item 6)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.policy.services import policy_object_update
from tests.browser.test_registry_flow import log_in
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, refund

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SHOTS = Path(tempfile.gettempdir()) / "oversight-shots"  # /tmp/oversight-shots


def test_an_owner_finds_a_grant_change_among_200_decisions(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production", name="p")
    grant = grant_refunds(agent)
    for i in range(100):
        decide(token, refund(10 + i))
    policy_object_update(actor=SYSTEM, obj=grant, resource="stripe:charge/ch_*")
    for i in range(100):
        decide(token, refund(10 + i))

    page.goto(f"{live_url}/agents/{agent.slug}/")
    log_in(page, "alice")
    history = page.locator("#agent-history")
    entries = history.locator(".history-entry")
    # Changes first: the grant's change (and the release it made) on top, not under 200
    # decisions.
    released = ["release.promoted", "release.created"]
    expect(entries.locator(".verb")).to_have_text(
        [
            *released,
            "grant.updated",
            *released,
            "grant.created",
            "token.created",
            *released,
            "agent.created",
        ]
    )
    change = entries.nth(2).locator("table.diff tr", has=page.locator("th", has_text="Resource"))
    expect(change.locator(".old")).to_have_text("stripe:charge/*")
    expect(change.locator(".new")).to_have_text("stripe:charge/ch_*")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "history-changes.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # the filter fits on a phone
    right = history.locator("form").evaluate("e => e.getBoundingClientRect().right")
    assert right <= 390, f"the History's filter sticks out of a 390 px screen: {right}px"
    page.set_viewport_size({"width": 1280, "height": 800})

    # The decisions are one choice away, 50 to a page, with older pages behind.
    history.get_by_label("Show").select_option("actions")
    expect(entries).to_have_count(50)
    expect(entries.locator(".verb", has_text="action.decided")).to_have_count(50)
    expect(page).to_have_url(f"{live_url}/agents/{agent.slug}/?show=actions")
    first_page = entries.locator(".mono").all_inner_texts()
    seen = list(first_page)
    for _ in range(3):
        history.get_by_role("link", name="Older events →").click()
        expect(entries.first.locator(".mono")).not_to_have_text(seen[-50])
        expect(entries).to_have_count(50)
        seen += entries.locator(".mono").all_inner_texts()
    expect(history.get_by_role("link", name="Older events →")).to_have_count(0)
    assert len(seen) == len(set(seen)) == 200
    assert "before=" in page.url and "show=actions" in page.url
    page.screenshot(path=SHOTS / "history-oldest-decisions.png", full_page=True)

    # A reload shows what the address says; one family narrows to the policy.
    page.reload()
    expect(entries).to_have_count(50)
    history.get_by_label("Show").select_option("policy")
    expect(entries.locator(".verb")).to_have_text(
        [*released, "grant.updated", *released, "grant.created", *released]
    )
    history.get_by_label("Show").select_option("killswitch")
    expect(history.get_by_text("Nothing of this kind yet.")).to_be_visible()
    history.get_by_role("link", name="Show everything").click()
    expect(entries).to_have_count(50)
    expect(entries.first.locator(".verb")).to_have_text("action.decided")


def test_a_filter_swapped_in_answers_at_once(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    """htmx wires up swapped-in content when it settles: with its default 20 ms settle
    delay, a change made in that window went nowhere (a flaky CI run showed it). The
    change here is made on the next tick after the swap, which that delay would lose."""
    grant_refunds(agent)
    page.goto(f"{live_url}/agents/{agent.slug}/")
    log_in(page, "alice")
    history = page.locator("#agent-history")
    expect(history).to_be_visible()  # the page after logging in, not the one it leaves
    page.evaluate(
        """() => document.body.addEventListener("htmx:afterSwap", (event) => {
            if (window.refiltered || event.detail.target.id !== "agent-history") return;
            window.refiltered = true;
            setTimeout(() => {
                const select = document.querySelector("#agent-history select");
                select.value = "killswitch";
                select.dispatchEvent(new Event("change", {bubbles: true}));
            }, 0);
        })"""
    )
    history.get_by_label("Show").select_option("policy")
    expect(history.get_by_text("Nothing of this kind yet.")).to_be_visible()
    expect(history.get_by_label("Show")).to_have_value("killswitch")
