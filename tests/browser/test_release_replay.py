"""Replay in Chromium: on a stricter release's page, one click re-decides the last week's
recorded refunds under it and shows what would change, with links to the actions."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.gateway.models import Action
from tests.browser.a11y import low_contrast, unnamed_controls
from tests.browser.test_registry_flow import SHOTS, log_in
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, forbid_big_refunds, grant_refunds, refund

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_teammate_replays_the_last_week_under_a_stricter_release(
    page: Page, live_url: str, teammate: Any, agent: Agent
) -> None:
    grant_refunds(agent)  # v2: refunds granted
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    for amount in (40, 250, 900):
        decide(token, refund(amount, charges=(f"ch_{amount}",)))
    forbid_big_refunds(agent)  # v3: refunds over 100 forbidden
    actions = Action.objects.count()

    page.goto(f"{live_url}/agents/{agent.slug}/releases/3/")
    log_in(page, teammate.username)
    replay = page.locator("#replay")
    expect(replay.get_by_role("combobox", name="Window")).to_have_value("7d")
    replay.get_by_role("button", name="Replay").click()

    table = replay.get_by_role("table", name="What would change")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(1)
    cells = table.locator("tbody tr td")
    expect(cells).to_have_text(["allow", "deny", "2"])
    expect(replay).to_contain_text("3 recorded decisions")
    expect(replay).to_contain_text("no big refunds")
    expect(replay).to_contain_text("stripe:charge/ch_900")
    expect(replay).to_contain_text("kill switches and standing holds")
    assert page.url.endswith("/releases/3/")  # swapped in, not navigated
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "release-replay.png", full_page=True)
    assert unnamed_controls(page) == [] and low_contrast(page) == []  # the results too

    replay.locator("table.replay-examples a").first.click()  # the newest: 900
    expect(page.locator("body")).to_contain_text("stripe:charge/ch_900")
    assert Action.objects.count() == actions  # nothing written
