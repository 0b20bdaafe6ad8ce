"""Releases in Chromium: a rule changed on the policy page is a new release; the two are
compared side by side; one click rolls back, as a new release."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.policy.models import Rule
from oversight.releases.services import releases_batched
from tests.browser.test_registry_flow import SHOTS, log_in
from tests.gateway.helpers import forbid_big_refunds, grant_refunds

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_owner_changes_a_rule_compares_and_rolls_back_in_one_click(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    with releases_batched(notes="first policy"):  # v2: a grant and a rule
        grant_refunds(agent)
        rule = forbid_big_refunds(agent)
    page.goto(f"{live_url}/agents/{agent.slug}/policy/rule/{rule.pk}/edit/")
    log_in(page, owner.username)
    page.locator("[name=condition]").fill("params.amount > 5000")
    page.get_by_role("button", name="Save").click()

    page.goto(f"{live_url}/agents/{agent.slug}/")
    page.get_by_role("link", name="Releases (v3)").click()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("v3")
    expect(rows.first).to_contain_text("stable")

    page.get_by_role("button", name="Compare").click()  # v2 with v3, the default
    expect(page.get_by_role("heading", name="v2 → v3")).to_be_visible()
    changed = page.locator("section", has_text="Rules")
    expect(changed).to_contain_text("params.amount > 100")
    expect(changed).to_contain_text("params.amount > 5000")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "release-compare.png", full_page=True)

    page.goto(f"{live_url}/agents/{agent.slug}/releases/2/")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Roll back to v2").click()
    expect(page.get_by_role("heading", name="Release v4")).to_contain_text("stable")
    expect(page.locator("body")).to_contain_text("rollback to v2")
    assert asked == [
        "Roll back to v2? Its grants, rules and config decide every request from the next"
        " one; the change is audited."
    ]
    expect(page.locator("body")).to_contain_text("params.amount > 100")
    page.screenshot(path=SHOTS / "release-rolled-back.png", full_page=True)
    assert Rule.objects.get(pk=rule.pk).condition == "params.amount > 100"
    agent.refresh_from_db()
    assert agent.stable_version == 4 and agent.stable_release.parent.version == 3
