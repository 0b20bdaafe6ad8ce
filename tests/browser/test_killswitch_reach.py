"""The kill switch, any scope, is at most two clicks and the reason from any page: open
the top bar's menu, type the reason, press the button of what to stop. Escape closes the
menu and gives focus back to its button. In Chromium against the real server."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.killswitch.models import KillSwitch
from tests.browser.ui import World, log_in, make_world, shot

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(agent: Any, other_agent: Any, reviewer: Any, auditor: Any, admin_user: Any) -> World:
    return make_world(agent, reviewer, auditor)


def press(page: Page, button: str, reason: str, *, choose: str = "") -> None:
    """Two clicks and the reason (and, for a scope the page is not about, the choice in
    the menu's list, made with the keyboard)."""
    page.locator("#ks-menu summary").click()  # 1
    expect(page.get_by_label("Reason")).to_be_focused()
    page.keyboard.type(reason)
    if choose:
        page.get_by_label("Or choose another").select_option(label=choose)
    page.get_by_role("button", name=button, exact=True).click()  # 2


def engaged() -> list[str]:
    return sorted(str(s) for s in KillSwitch.objects.filter(engaged=True))


@pytest.mark.slow
def test_an_admin_stops_and_releases_everything_from_every_page(
    page: Page, live_url: str, world: World
) -> None:
    log_in(page, live_url, "ada")
    for name, path in world.pages().items():
        page.goto(f"{live_url}{path}")
        press(page, "Stop every agent", f"drill from the {name} page")
        expect(page).to_have_url(f"{live_url}{path}")  # back where the person was
        expect(page.locator("#killswitch-banners")).to_contain_text(f"from the {name} page")
        assert engaged() == ["kill switch for everything (engaged)"], name
        press(page, "Release every agent", "drill over")
        expect(page.locator("#killswitch-banners .banner")).to_have_count(0)
        assert engaged() == [], name


def test_an_owner_stops_the_pages_agent_its_team_or_any_other_of_hers(
    page: Page, live_url: str, world: World, django_user_model: Any
) -> None:
    log_in(page, live_url, "alice", world.pages()["policy"])
    press(page, "Stop Refund bot", "refunds to the wrong customers")
    expect(page.locator("h1")).to_contain_text("Policy of Refund bot")
    assert engaged() == ["kill switch for Refund bot (engaged)"]
    shot(page, "killswitch-agent-halted")

    page.goto(f"{live_url}{world.pages()['agent']}")
    expect(page.locator("h1 .pill")).to_have_text("Halted by a kill switch")
    press(page, "Release Refund bot", "fixed the lookup")
    expect(page.locator("h1 .pill")).to_have_text("Active")

    page.goto(f"{live_url}{world.pages()['team']}")
    press(page, "Stop team payments", "payments incident")
    assert engaged() == ["kill switch for payments (engaged)"]
    press(page, "Release team payments", "over")

    # A page about no agent in particular: the list holds every agent and team she may stop.
    page.goto(f"{live_url}/approvals/")
    press(page, "Stop it", "from the queue", choose="Refund bot (refund-bot)")
    expect(page.get_by_text("Kill switch for agent Refund bot engaged")).to_be_visible()
    assert engaged() == ["kill switch for Refund bot (engaged)"]


def test_escape_closes_the_menu_and_focus_returns_to_its_button(
    page: Page, live_url: str, world: World
) -> None:
    log_in(page, live_url, "ada", "/agents/")
    summary = page.locator("#ks-menu summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Reason")).to_be_visible()
    expect(page.get_by_label("Reason")).to_be_focused()
    shot(page, "killswitch-menu")
    page.keyboard.press("Escape")
    expect(page.get_by_label("Reason")).to_be_hidden()
    expect(summary).to_be_focused()
    # A click elsewhere closes it too.
    summary.click()
    expect(page.get_by_label("Reason")).to_be_visible()
    page.locator("h1").click()
    expect(page.get_by_label("Reason")).to_be_hidden()
