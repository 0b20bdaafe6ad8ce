"""Accessibility in Chromium: a skip link, the first Approve a few keystrokes away, every
visible form control named, and text contrast of at least 4.5:1 (3:1 for large text)
on every main page, for the admin, an owner and a reviewer, with every popover and add
form open. The checks are tests/browser/a11y.py's."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.a11y import low_contrast, open_every_disclosure, unnamed_controls
from tests.browser.ui import DESKTOP, PHONE, World, log_in, make_world

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(agent: Any, other_agent: Any, reviewer: Any, auditor: Any, admin_user: Any) -> World:
    return make_world(agent, reviewer, auditor)


def test_the_first_approve_is_a_skip_link_and_four_tabs_away(
    page: Page, live_url: str, world: World
) -> None:
    log_in(page, live_url, "rita", "/approvals/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # shown once it has focus
    page.keyboard.press("Enter")
    approve = page.locator(f"#queue-{world.held.pk}").get_by_role("button", name="Approve")
    focused = []
    for _ in range(4):  # the agent, its actions, the comment, Approve
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.outerHTML.slice(0, 80)"))
        if approve.evaluate("(button) => button === document.activeElement"):
            return
    pytest.fail(f"four tabs after the skip link went through {focused}")


@pytest.mark.slow
def test_every_control_is_named_and_text_is_readable_everywhere(
    browser: Browser, live_url: str, world: World, teammate: Any
) -> None:
    pages = {
        **world.pages(),
        "agent-edit": f"/agents/{world.agent.slug}/edit/",
        "register": "/agents/new/",
        "releases": f"/agents/{world.agent.slug}/releases/",
        "release": f"/agents/{world.agent.slug}/releases/1/",
        "release-compare": f"/agents/{world.agent.slug}/releases/compare/?old=1&new=1",
        "team-periods": f"/teams/{world.agent.team.slug}/recertification/",
        "team-notifications": f"/teams/{world.agent.team.slug}/notifications/",
    }
    problems: dict[str, list[str]] = {}
    checked = 0
    for person in ("ada", "alice", "rita"):
        for viewport in (DESKTOP, PHONE):
            context = browser.new_context(viewport=viewport)
            page = context.new_page()
            log_in(page, live_url, person)
            for name, path in pages.items():
                response = page.goto(f"{live_url}{path}")
                assert response is not None
                if response.status in (403, 404):
                    continue
                open_every_disclosure(page)
                where = f"{name} as {person} at {viewport['width']} px"
                found = [f"unnamed {c}" for c in unnamed_controls(page)] + low_contrast(page)
                if found:
                    problems[where] = found
                checked += 1
            context.close()
    assert not problems, problems
    assert checked > 40


def test_the_checks_find_what_they_look_for(page: Page, live_url: str, world: World) -> None:
    """The checks themselves: an unnamed field and an amber pill under 4.5:1 are found."""
    log_in(page, live_url, "ada", "/agents/")
    page.evaluate(
        """() => {
          const main = document.querySelector("main");
          main.insertAdjacentHTML("beforeend",
            '<input id="nameless"><span class="pill" style="color:#9a6700;background:#fef3c7">'
            + 'Waiting</span>');
        }"""
    )
    assert [c for c in unnamed_controls(page) if 'id="nameless"' in c]
    assert [f for f in low_contrast(page) if f.startswith("4.37:1 SPAN.pill")]
