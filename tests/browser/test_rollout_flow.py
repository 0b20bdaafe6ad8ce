"""A staged rollout in Chromium: a team requires approval; an owner's change waits; another
person approves it; it runs in staging, then in shadow, where its differences show; the
guard rolls it back with its evidence; the working copy is back to what is in force."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.policy.models import Rule
from oversight.policy.services import policy_object_create
from oversight.releases.guard import rollouts_guard
from oversight.releases.models import Rollout
from tests.browser.test_registry_flow import SHOTS, log_in
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, decide, grant_refunds, refund

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _other_person(browser: Browser, live_url: str, username: str, path: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live_url}{path}")
    log_in(page, username)
    return page


def test_a_gated_change_is_approved_shadowed_and_rolled_back_by_the_guard(
    browser: Browser, page: Page, live_url: str, owner: Any, admin_user: Any, agent: Agent
) -> None:
    grant_refunds(agent)  # v2, promoted at once
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]

    # An admin requires approved, staged rollouts from high risk (the agent is high).
    admin = _other_person(browser, live_url, admin_user.username, f"/teams/{agent.team.slug}/")
    section = admin.locator("#change-control")
    section.get_by_label("Approved, staged rollouts for agents at").select_option("high")
    section.get_by_role("button", name="Save").click()
    expect(admin.locator(".messages")).to_contain_text("Change control of payments saved")

    # The owner adds a forbid on the policy page: it is v3, not in force.
    page.goto(f"{live_url}/agents/{agent.slug}/policy/")
    log_in(page, owner.username)
    rules = page.locator("#rules")
    rules.locator("summary", has_text="Add rule").click()
    rules.get_by_label("Name").fill("no refunds at all")
    rules.get_by_label("Effect").select_option("forbid")
    rules.get_by_label("Action").fill("payments.refund")
    rules.get_by_role("button", name="Add rule").click()
    expect(page.locator("#not-in-force")).to_contain_text("v2 decides")
    expect(page.locator("#not-in-force")).to_contain_text("awaiting approval")
    assert decide(token, refund(10)).status == "allowed"

    page.locator("#not-in-force").get_by_role("link", name="v3").click()
    panel = page.locator("#rollout-panel")
    expect(panel).to_contain_text("Awaiting approval")
    expect(panel).to_contain_text("You made it, so someone else must approve it")
    expect(panel.get_by_role("button", name="Approve and start")).to_have_count(0)

    # The admin approves it: it starts in staging, then moves to shadow.
    admin.goto(f"{live_url}/agents/{agent.slug}/releases/3/")
    admin.get_by_role("button", name="Approve and start").click()
    expect(admin.locator("#rollout-panel")).to_contain_text("Staging")
    # Staging has nothing to judge it by: its author may not skip it (her panel, read
    # again live, says so); the admin may, saying why, once she confirms.
    expect(panel).to_contain_text(
        "under change control someone other than the release's author advances it",
        timeout=15_000,
    )
    expect(panel.get_by_role("button", name="Advance now")).to_have_count(0)
    advance = admin.locator("#rollout-panel form.advance-unjudged")
    why = advance.get_by_label("Why advance before the guard has judged this stage")
    why.fill("no staging traffic to judge it by")
    asked: list[str] = []
    admin.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    advance.get_by_role("button", name="Advance now").click()
    expect(admin.locator("#rollout-panel dl")).to_contain_text("Shadow")
    assert asked == [
        "Advance before the guard has judged this stage (the guard has not looked at it"
        " yet)? Your reason is recorded with it."
    ]

    # Production traffic: stable (v2) allows, v3 would deny; the page shows it live.
    for number in range(60):
        action = decide(token, refund(10, session_id=f"s{number}"))
        assert (action.status, action.shadow_status) == ("allowed", "denied")
    shadow = page.locator("#rollout-panel")
    expect(shadow).to_contain_text(
        "60 of 60 production requests evaluated under v3 would have been decided differently",
        timeout=15_000,
    )
    expect(shadow.locator("table").first).to_contain_text("allowed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "rollout-shadow.png", full_page=True)

    # The guard's look: a regression in deny rate; rolled back, with the evidence.
    rollout = Rollout.objects.get(agent=agent)
    assert rollouts_guard() == {str(rollout.pk): "rolled_back"}
    page.reload()
    panel = page.locator("#rollout-panel")
    expect(panel).to_contain_text("rolled back at shadow (guard: deny rate")
    expect(panel.locator("tr.regressed")).to_contain_text("deny rate")
    expect(panel.locator("tr.regressed")).to_contain_text("60 of 60")
    page.screenshot(path=SHOTS / "rollout-rolled-back.png", full_page=True)

    # The rejected rule is gone from the working copy; nothing is pending on the policy page.
    assert not Rule.objects.filter(agent=agent, name="no refunds at all").exists()
    page.goto(f"{live_url}/agents/{agent.slug}/policy/")
    expect(page.locator("#not-in-force")).to_have_count(0)
    expect(page.locator("#rules")).not_to_contain_text("no refunds at all")


def test_the_button_that_skips_a_rollout_says_so_and_asks_first(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    """v3 is rolled out in staging while v4 is stable. v3's page offered "Roll back to v3"
    beside the rollout panel's "Roll back", with opposite effects: pressed by mistake, it
    made v3 stable for all traffic at once. It now says it skips the rollout, and asks."""
    from oversight.releases import rollouts
    from oversight.releases.models import Release
    from oversight.releases.services import release_rollback

    grant_refunds(agent)  # v2
    policy_object_create(
        actor=SYSTEM, obj=Rule(agent=agent, name="no", effect="forbid", action=REFUND)
    )
    release_rollback(actor=SYSTEM, release=Release.objects.get(agent=agent, version=2))  # v4
    rollout = rollouts.rollout_start(
        actor=SYSTEM, release=Release.objects.get(agent=agent, version=3)
    )

    page.goto(f"{live_url}/agents/{agent.slug}/releases/3/")
    log_in(page, owner.username)
    button = page.get_by_role("button", name="Make v3 stable now, skipping its rollout")
    expect(page.get_by_role("button", name="Roll back to v3")).to_have_count(0)
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    button.click()
    expect(page.locator("#rollout-panel")).to_contain_text("Staging")
    assert asked and "without the rest of its rollout" in asked[0], asked
    rollout.refresh_from_db()
    agent.refresh_from_db()
    assert (rollout.state, agent.stable_version) == ("running", 4)  # nothing changed
    page.screenshot(path=str(SHOTS / "release-skip-rollout-asks.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the longer label wraps
    expect(button).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(SHOTS / "release-skip-rollout-asks-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.once("dialog", lambda dialog: dialog.accept())
    button.click()
    expect(page.locator(".messages")).to_contain_text("v5 is in force")
    agent.refresh_from_db()
    assert agent.stable_version == 5
