"""The approval queue's filters and compact list as a reviewer uses them: filter by team,
agent or risk, switch to the list, decide from it; what arrives live respects the
filters; the address says it all; it works without JavaScript and on a phone."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from oversight.agents.models import AgentToken
from oversight.agents.services import agent_access_grant, token_create
from oversight.gateway.models import Action
from oversight.live import groups
from tests.browser.ui import PHONE, RECORD_SOCKET_OPEN, log_in, shot
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund
from tests.servers import wait_until_the_server_listens

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class Bots:
    refund_bot: Any  # payments, high risk
    campaigner: Any  # growth, medium risk
    refund_token: AgentToken
    campaign_token: AgentToken

    def hold_refund(self) -> Action:
        return decide(self.refund_token, refund(900))

    def hold_campaign(self) -> Action:
        return decide(self.campaign_token, refund(901))


@pytest.fixture
def bots(agent: Any, other_agent: Any, admin_user: Any) -> Bots:
    other_agent.environments = ["production"]  # made for staging, where nothing is held
    other_agent.save(update_fields=["environments"])
    tokens = []
    for bot in (agent, other_agent):
        # Admins decide what escalates to them; ada reviews these two agents as well.
        agent_access_grant(actor=SYSTEM, agent=bot, user=admin_user, level="reviewer")
        grant_refunds(bot)
        hold_large_refunds(bot)
        tokens.append(token_create(actor=SYSTEM, agent=bot, environment="production")[0])
    return Bots(agent, other_agent, *tokens)


def _socket_reopened(page: Page, agent_id: int) -> None:
    """After a filter change the region's new socket is open and its groups joined."""
    page.wait_for_function("window.__socketOpen === true")
    wait_until_the_server_listens(groups.agent_queue(agent_id))
    time.sleep(0.3)


def _change(page: Page, action: Any) -> None:
    page.evaluate("window.__socketOpen = false")
    action()


def _filter(page: Page, label: str) -> Any:
    """A filter's select, by its label (its name also holds the chosen option's text)."""
    return page.get_by_role("combobox", name=re.compile(f"^{label}"))


def _card(page: Page, action: Action) -> Any:
    return page.locator(f"#queue-{action.pk}")


def test_a_reviewer_filters_the_queue_switches_to_the_list_and_decides_from_it(
    page: Page, live_url: str, bots: Bots
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    refund_held, campaign_held = bots.hold_refund(), bots.hold_campaign()
    page.add_init_script(RECORD_SOCKET_OPEN)
    log_in(page, live_url, "ada", "/approvals/")
    page.wait_for_function("window.__socketOpen === true")
    page.evaluate("window.__marker = 'no reload'")
    expect(_card(page, refund_held)).to_be_visible()
    expect(_card(page, campaign_held)).to_be_visible()

    # Team: payments. Only the refund bot's card stays; the address says so.
    _change(page, lambda: _filter(page, "Team").select_option("payments"))
    expect(_card(page, campaign_held)).to_have_count(0)
    expect(_card(page, refund_held)).to_be_visible()
    expect(page).to_have_url(f"{live_url}/approvals/?agent=&team=payments&risk=&view=cards")
    _socket_reopened(page, bots.refund_bot.pk)

    # Live: the campaigner's new held action stays off this queue, the refund bot's comes.
    campaign_late = bots.hold_campaign()
    refund_late = bots.hold_refund()
    expect(_card(page, refund_late)).to_be_visible()
    expect(_card(page, campaign_late)).to_have_count(0)
    shot(page, "approvals-filtered-cards")

    # The compact list: a line per held action, the filter kept.
    _change(page, lambda: page.get_by_label("Compact list").check())
    expect(page).to_have_url(f"{live_url}/approvals/?agent=&team=payments&risk=&view=list")
    rows = page.locator("#approval-list > li")
    expect(rows).to_have_count(2)
    for row in rows.all():
        # One line on a desktop; here two params do not fit beside the rest, so they
        # take a line of their own below it, whole (a one-click Approve approves them).
        assert row.bounding_box()["height"] < 90, "a row is a line and its params' line"
        params = row.locator(".queue-row-params")
        expect(params).to_have_text('amount: 900charges: ["ch_1"]')
        assert params.evaluate("e => e.scrollHeight <= e.clientHeight + 1"), "params cut"
    _socket_reopened(page, bots.refund_bot.pk)
    refund_later = bots.hold_refund()
    bots.hold_campaign()
    expect(page.locator(f"#approval-list > #queue-{refund_later.pk}")).to_be_visible()
    expect(rows).to_have_count(3)
    shot(page, "approvals-compact-list")

    # Approve from the list: decided, it leaves the list (and every other open queue).
    row = page.locator(f"#queue-{refund_held.pk}")
    row.get_by_role("button", name="Approve").click()
    expect(row).to_have_count(0)
    expect(rows).to_have_count(2)
    refund_held.refresh_from_db()
    assert refund_held.status == "approved"

    # Risk and agent filters narrow the same way; the page was never reloaded.
    _change(page, lambda: _filter(page, "Risk").select_option("medium"))
    expect(page.locator("#approval-list > li")).to_have_count(0)
    expect(page.get_by_text("Nothing that matches these filters")).to_be_visible()
    assert page.evaluate("window.__marker") == "no reload"
    assert not errors, errors

    # The address alone brings the same view back.
    page.goto(f"{live_url}/approvals/?agent=email-campaigner&view=list")
    expect(_filter(page, "Agent")).to_have_value("email-campaigner")
    expect(page.get_by_label("Compact list")).to_be_checked()
    expect(page.locator("#approval-list > li")).to_have_count(3)


def test_the_filters_work_without_javascript(browser: Browser, live_url: str, bots: Bots) -> None:
    refund_held, campaign_held = bots.hold_refund(), bots.hold_campaign()
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_url, "ada", "/approvals/")
        _filter(page, "Agent").select_option("email-campaigner")
        page.get_by_label("Compact list").check()
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(
            f"{live_url}/approvals/?agent=email-campaigner&team=&risk=&view=list"
        )
        expect(page.locator(f"#queue-{campaign_held.pk}")).to_be_visible()
        expect(page.locator(f"#queue-{refund_held.pk}")).to_have_count(0)
    finally:
        context.close()


@pytest.mark.parametrize("view", ["cards", "list"])
def test_the_filtered_queue_fits_a_phone(
    browser: Browser, live_url: str, bots: Bots, view: str
) -> None:
    for _ in range(3):
        bots.hold_refund()
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        log_in(page, live_url, "ada", "/approvals/")
        page.goto(f"{live_url}/approvals/?team=payments&view={view}")
        expect(page.locator("[id^=queue-]")).to_have_count(3)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the {view} queue is {width}px wide on a phone"
        shot(page, f"approvals-phone-{view}")
    finally:
        context.close()
