"""Voting as people do it beyond the happy path: with JavaScript off (the forms post, the
comment stays out of the address), and a reviewer who voted on an action that needs two."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from oversight.accounts import roles
from oversight.agents.services import agent_access_grant
from oversight.gateway.models import Action
from oversight.live import groups
from oversight.policy.models import Rule
from oversight.policy.services import policy_object_create
from tests.browser import test_approvals_flow as flow
from tests.browser.test_approvals_flow import Scene, log_in, screenshot
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import REFUND
from tests.servers import wait_until_the_server_listens

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The approvals flow's people and pages.
scene, open_as = flow.scene, flow.open_as


def _held(live_url: str, scene: Scene, charge: str) -> str:
    response = httpx.post(
        f"{live_url}/api/v1/actions",
        json={"action": REFUND, "resource": f"stripe:charge/{charge}", "params": {"amount": 900}},
        headers={"Authorization": f"Bearer {scene.raw_token}"},
    )
    assert response.json()["status"] == "pending", response.text
    return response.json()["id"]


def _a_held_refund_before_rob_and_rita(
    open_as: Callable[[str, str], Page],
    live_url: str,
    scene: Scene,
    approvals: int,
    rob_view: str = "cards",
) -> tuple[Page, Page, str]:
    """Rob's and rita's queues open, live, when a refund that needs `approvals` people's
    approvals is held: their pages and its id."""
    _needs_approvals(scene, approvals)
    rob = open_as("rob", f"/approvals/?view={rob_view}")
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
    return rob, rita, _held(live_url, scene, "ch_1")


def _needs_approvals(scene: Scene, approvals: int) -> None:
    """Large refunds need this many people's approvals."""
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=scene.agent,
            name=f"{approvals} people for large refunds",
            effect="hold",
            action=REFUND,
            condition="params.amount > 500",
            approvals=approvals,
        ),
    )


def test_without_javascript_a_deny_and_approvals_are_taken_and_the_comment_stays_private(
    browser: Browser, live_url: str, scene: Scene
) -> None:
    denied, approved, from_row = (_held(live_url, scene, c) for c in ("ch_1", "ch_2", "ch_3"))
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 800}
    )
    addresses: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda request: addresses.append(request.url))
        page.goto(f"{live_url}/actions/{denied}/")
        log_in(page, "rita")
        expect(page).to_have_url(f"{live_url}/actions/{denied}/")

        decision = page.locator(f"#queue-{denied}")
        decision.get_by_label("Comment").fill("nojs deny")
        decision.get_by_role("button", name="Deny").click()

        expect(page).to_have_url(f"{live_url}/actions/{denied}/")
        expect(page.get_by_text("You denied this action.")).to_be_visible()
        assert Action.objects.get(pk=denied).status == "rejected"
        assert Action.objects.get(pk=denied).votes.get().comment == "nojs deny"
        screenshot(page, "nojs-denied-1280.png")

        page.goto(f"{live_url}/approvals/")
        page.locator(f"#queue-{approved}").get_by_role("button", name="Approve").click()
        expect(page).to_have_url(f"{live_url}/actions/{approved}/")
        expect(page.get_by_text("You approved this action.")).to_be_visible()
        assert Action.objects.get(pk=approved).status == "approved"

        page.goto(f"{live_url}/approvals/?view=list")
        page.locator(f"#queue-{from_row}").get_by_role("button", name="Approve").click()
        expect(page).to_have_url(f"{live_url}/actions/{from_row}/")
        assert Action.objects.get(pk=from_row).status == "approved"
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(page, "nojs-approved-390.png")
    finally:
        context.close()
    assert not [a for a in addresses if "comment=" in a or "nojs" in a], addresses


def test_a_reviewer_who_voted_is_told_it_waits_for_another_and_gets_no_buttons(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    rob, rita, action_id = _a_held_refund_before_rob_and_rita(open_as, live_url, scene, 2)
    rita_card = rita.locator(f"#queue-{action_id}")
    rob_card = rob.locator(f"#queue-{action_id}")
    expect(rob_card).to_contain_text("Votes 0 of 2")

    rob_card.get_by_role("button", name="Approve").click()

    voted = rob.locator(f"#voted-{action_id}")
    expect(voted.get_by_role("status")).to_have_text(
        "payments.refund stripe:charge/ch_1: You approved this (1 of 2); "
        "waiting for another reviewer."
    )
    expect(voted).to_contain_text("rob approved")
    expect(voted).to_contain_text("Who may approve: anyone with approve access: rita")
    expect(rita_card).to_contain_text("Votes 1 of 2")  # the live update reached rita …
    expect(rob_card).to_have_count(0)  # … and gave rob no buttons back
    expect(rob.get_by_role("button", name="Approve")).to_have_count(0)
    screenshot(rob, "voted-waiting-1280.png")
    rob.set_viewport_size({"width": 390, "height": 844})
    screenshot(rob, "voted-waiting-390.png")

    rita_card.get_by_role("button", name="Approve").click()

    expect(voted).to_have_count(0)  # decided: it leaves rob's page too, live
    assert Action.objects.get(pk=action_id).status == "approved"
    rob.reload()
    expect(rob.get_by_text("Nothing is waiting for you.")).to_be_visible()


def test_an_edit_that_supersedes_a_vote_brings_the_card_back_to_the_voter_live(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    rob, rita, action_id = _a_held_refund_before_rob_and_rita(open_as, live_url, scene, 2)
    rob.locator(f"#queue-{action_id}").get_by_role("button", name="Approve").click()
    expect(rob.locator(f"#voted-{action_id}")).to_contain_text("You approved this (1 of 2)")

    rita_card = rita.locator(f"#queue-{action_id}")
    expect(rita_card).to_contain_text("Votes 1 of 2")
    rita_card.get_by_text("Edit and approve").click()
    rita_card.get_by_label("Params to approve").fill('{"amount": 600}')
    rita_card.get_by_role("button", name="Approve with these params").click()
    expect(rita.locator(f"#voted-{action_id}")).to_contain_text("You approved this (1 of 2)")

    # rob's approval was of 900: it no longer counts, and the card is back on his page.
    rob_card = rob.locator(f"#queue-{action_id}")
    expect(rob.locator(f"#voted-{action_id}")).to_have_count(0)
    expect(rob_card).to_contain_text("600")
    expect(rob_card).to_contain_text("Votes 1 of 2")
    screenshot(rob, "voted-superseded-1280.png")
    # rita's own vote stands: her page keeps it, with no buttons.
    expect(rita.locator(f"#queue-{action_id}")).to_have_count(0)

    rob_card.get_by_role("button", name="Approve").click()

    expect(rob.locator(f"#queue-{action_id}")).to_have_count(0)
    action = Action.objects.get(pk=action_id)
    assert (action.status, action.params) == ("approved", {"amount": 600})


def test_a_reviewer_waiting_on_her_vote_sees_the_next_vote_counted_live(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene, django_user_model: Any
) -> None:
    ruth = make_user(django_user_model, "ruth", roles.REVIEWER)
    agent_access_grant(actor=SYSTEM, agent=scene.agent, user=ruth, level="reviewer")
    rob, rita, action_id = _a_held_refund_before_rob_and_rita(
        open_as, live_url, scene, 3, rob_view="list"
    )
    rob.locator(f"#queue-{action_id}").get_by_role("button", name="Approve").click()
    voted = rob.locator(f"#voted-{action_id}")
    expect(voted).to_contain_text("You approved this (1 of 3); waiting for 2 more reviewers.")

    rita.locator(f"#queue-{action_id}").get_by_role("button", name="Approve").click()

    expect(voted).to_contain_text("You approved this (2 of 3); waiting for another reviewer.")
    expect(rob.get_by_role("button", name="Approve")).to_have_count(0)


def test_a_vote_that_lost_the_race_is_told_though_the_live_queue_took_its_card(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    """Rita denied while rob's approve was on its way; the live update removed rob's
    card before his answer (409) came back, and he was told nothing."""
    import threading

    from django.db import connection

    from oversight.approvals.services import approval_vote

    rob, _, action_id = _a_held_refund_before_rob_and_rita(open_as, live_url, scene, 1)
    card = rob.locator(f"#queue-{action_id}")
    expect(card).to_contain_text("Votes 0 of 1")
    seen = Action.objects.get(pk=action_id).request_hash

    def rita_denies() -> None:  # in a thread of its own, whose connection it closes
        try:
            approval_vote(
                user=scene.rita, action_id=action_id, vote="deny", comment="not today", seen=seen
            )
        finally:
            connection.close()

    def rita_first(route: Any) -> None:
        denying = threading.Thread(target=rita_denies)
        denying.start()
        denying.join()
        expect(card).to_have_count(0)  # the live queue took rob's card away meanwhile
        route.continue_()

    rob.route(f"**/approvals/{action_id}/vote/", rita_first)
    card.get_by_role("button", name="Approve").click()

    status = rob.locator("#vote-status")
    expect(status).to_contain_text("Your vote was not counted.")
    expect(status).to_contain_text("already decided; its status now: denied by a reviewer")
    expect(status).to_have_class("error")
    assert Action.objects.get(pk=action_id).status == "rejected"
    assert Action.objects.get(pk=action_id).votes.count() == 1
    screenshot(rob, "vote-lost-race-1280.png")
