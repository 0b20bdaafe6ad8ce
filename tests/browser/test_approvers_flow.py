"""Explicit approvers as a new team meets them, in Chromium: an owner builds a two-person
rule and is told at once who can approve it (refused while too few can), reviewers see
who may approve and who voted on the card, and an action nobody can decide any more goes
to the admins, visibly."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.accounts import roles
from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.gateway.models import Action
from tests.browser.test_phone_layout import assert_no_sideways_scroll
from tests.browser.ui import DESKTOP, PHONE, log_in, shot
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import decide, grant_refunds, refund

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _add_two_person_rule(page: Page) -> None:
    rules = page.locator("#rules")
    summary = rules.locator("summary", has_text="Add rule")
    if rules.locator("details.add-form").get_attribute("open") is None:
        summary.click()
    rules.get_by_label("Name").fill("two people for big refunds")
    rules.get_by_label("Effect").select_option("hold")
    rules.get_by_label("Action").fill("payments.refund")
    rules.get_by_label("When (CEL)").fill("params.amount > 500")
    rules.get_by_label("Approvals").fill("2")
    rules.get_by_label("Not the owner (separation of duties)").check()
    rules.get_by_label("Who approves").select_option("team_reviewers")
    rules.get_by_role("button", name="Add rule").click()


def _add_reviewer(page: Page, base: str, team: str, username: str) -> None:
    page.goto(f"{base}/teams/{team}/")
    section = page.locator("#team-reviewers")
    section.get_by_label("Person").select_option(label=username)
    section.get_by_role("button", name="Add reviewer").click()
    expect(section.get_by_role("status")).to_contain_text(f"{username} now reviews")


def test_an_owner_builds_a_two_person_rule_and_is_told_at_once_who_can_approve_it(
    page: Page, live_url: str, owner: Any, agent: Agent, reviewer: Any, django_user_model: Any
) -> None:
    make_user(django_user_model, "rob", roles.REVIEWER)
    grant_refunds(agent)
    team = agent.team.slug
    log_in(page, live_url, "alice", f"/agents/{agent.slug}/policy/")

    # Nobody can approve yet: refused, naming the rule and who is eligible.
    _add_two_person_rule(page)
    error = page.locator("#rules .error[role=alert]")
    expect(error).to_contain_text("Rule “two people for big refunds” needs 2 approvals from")
    expect(error).to_contain_text("but only 0 people are eligible (nobody)")

    # One reviewer is not enough for two approvals.
    _add_reviewer(page, live_url, team, "rita")
    shot(page, "approvers-team-reviewers")
    page.goto(f"{live_url}/agents/{agent.slug}/policy/")
    _add_two_person_rule(page)
    expect(page.locator("#rules .error[role=alert]")).to_contain_text(
        "only 1 person is eligible (rita)"
    )

    # Two reviewers: saved, and the owner is told at once who can approve.
    _add_reviewer(page, live_url, team, "rob")
    page.goto(f"{live_url}/agents/{agent.slug}/policy/")
    _add_two_person_rule(page)
    expect(
        page.get_by_text("Who can approve what it holds (2 approvals needed): rita, rob.")
    ).to_be_visible()
    row = page.locator("#rules tr", has_text="two people for big refunds")
    expect(row).to_contain_text("2 approvals from the reviewers of team payments, not the owner")
    expect(row).to_contain_text("Eligible now: rita, rob")
    shot(page, "approvers-policy-rule")
    page.set_viewport_size(PHONE)
    assert_no_sideways_scroll(page, "policy with approvers")
    page.goto(f"{live_url}/teams/{team}/")
    assert_no_sideways_scroll(page, "team page with reviewers")
    shot(page, "approvers-team-phone")
    page.set_viewport_size(DESKTOP)


def test_cards_show_approvers_and_votes_and_escalation_is_visible(
    browser: Any,
    live_url: str,
    owner: Any,
    agent: Agent,
    reviewer: Any,
    admin_user: Any,
    django_user_model: Any,
) -> None:
    from oversight.accounts.services import team_reviewer_add
    from oversight.policy.models import Rule
    from oversight.policy.services import policy_object_create

    rob = make_user(django_user_model, "rob", roles.REVIEWER)
    for person in (reviewer, rob):
        team_reviewer_add(actor=SYSTEM, team=agent.team, user=person)
        agent.team.refresh_from_db()
    grant_refunds(agent)
    rule = Rule(
        agent=agent,
        name="two people",
        effect="hold",
        action="payments.refund",
        condition="params.amount > 500",
        approvals=2,
        separation_of_duties=True,
        approvers="team_reviewers",
    )
    policy_object_create(actor=SYSTEM, obj=rule)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    action = decide(token, refund(900))

    rita = browser.new_page(viewport=DESKTOP)
    log_in(rita, live_url, "rita", "/approvals/")
    card = rita.locator(f"#queue-{action.pk}")
    expect(card).to_contain_text(
        "Who may approve: the reviewers of team payments, not the owner: rita, rob"
    )
    expect(card).to_contain_text("2 more needed")
    card.get_by_label("Comment").fill("customer confirmed by phone")
    card.get_by_role("button", name="Approve").click()
    # She has nothing more to decide: the card says so, with the votes and who may approve.
    card = rita.locator(f"#voted-{action.pk}")
    expect(card).to_contain_text("You approved this (1 of 2); waiting for another reviewer.")
    expect(card.get_by_role("button")).to_have_count(0)
    expect(card).to_contain_text("rita approved")
    expect(card).to_contain_text("“customer confirmed by phone”")
    expect(card).to_contain_text("1 more needed")
    expect(card).to_contain_text(
        "Who may approve: the reviewers of team payments, not the owner: rob"
    )
    shot(rita, "approvers-card")
    rita.set_viewport_size(PHONE)
    assert_no_sideways_scroll(rita, "queue card with approvers")
    shot(rita, "approvers-card-phone")

    # The owner removes rob: nobody left who can give the second approval.
    alice = browser.new_page(viewport=DESKTOP)
    log_in(alice, live_url, "alice", f"/teams/{agent.team.slug}/")
    alice.on("dialog", lambda dialog: dialog.accept())
    row = alice.locator("#team-reviewers tr", has_text="rob")
    row.get_by_role("button", name="Remove").click()
    expect(alice.locator("#team-reviewers").get_by_role("status")).to_contain_text(
        "rob no longer reviews"
    )
    expect(alice.locator("#team-reviewers [role=alert]")).to_contain_text(
        "Rule “two people” needs 2 approvals"
    )
    alice.goto(f"{live_url}/agents/{agent.slug}/")
    expect(alice.locator("#agent-access [role=alert]")).to_contain_text(
        "Rule “two people” needs 2 approvals"
    )

    admin = browser.new_page(viewport=DESKTOP)
    log_in(admin, live_url, "ada", f"/actions/{action.pk}/")
    expect(admin.get_by_text("Escalated to admins")).to_be_visible()
    expect(admin.locator(".escalated")).to_contain_text("nobody eligible can decide it")
    expect(admin.locator(".approvers").first).to_contain_text("ada")
    shot(admin, "approvers-escalated-action")
    admin.get_by_role("button", name="Approve").click()
    expect(admin.locator(f"#queue-{action.pk}")).to_have_count(0)  # decided: it leaves
    admin.reload()
    expect(admin.locator("h1")).to_contain_text("Approved")
    expect(admin.locator("#action-approvers")).to_contain_text("ada approved")
    assert Action.objects.get(pk=action.pk).status == "approved"
    for each in (rita, alice, admin):
        each.close()


def test_access_granted_brings_the_waiting_actions_to_the_open_queue(
    browser: Any, live_url: str, owner: Any, agent: Agent, reviewer: Any, django_user_model: Any
) -> None:
    from tests.browser.ui import RECORD_SOCKET_OPEN
    from tests.gateway.helpers import hold_large_refunds

    grant_refunds(agent)
    hold_large_refunds(agent)  # the team has a standby reviewer, so the rule is accepted
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    action = decide(token, refund(900))

    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(RECORD_SOCKET_OPEN)
    rita = context.new_page()
    log_in(rita, live_url, "rita", "/approvals/")
    rita.wait_for_function("window.__socketOpen === true")
    rita.evaluate("window.__marker = 1")  # a full page load would wipe this out
    expect(rita.locator(f"#queue-{action.pk}")).to_have_count(0)

    alice = browser.new_page(viewport=DESKTOP)
    log_in(alice, live_url, "alice", f"/agents/{agent.slug}/")
    access = alice.locator("#agent-access")
    access.get_by_label("Person").select_option(label="rita")
    access.get_by_label("Level").select_option("reviewer")
    access.get_by_role("button", name="Grant access").click()
    expect(access).to_contain_text("reviewer")

    card = rita.locator(f"#queue-{action.pk}")
    expect(card).to_be_visible()
    expect(card).to_contain_text("Who may approve: anyone with approve access: rita, standby1")
    assert rita.evaluate("window.__marker") == 1  # live, not reloaded
    shot(rita, "approvers-live-grant")
    context.close()
    alice.close()
