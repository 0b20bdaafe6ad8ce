"""Held actions and the kill switch as people live them: several people in Chromium at
once, an agent using the SDK in a background thread, and the real ASGI server.

Everything a page learns here it learns over its websocket: each page sets
``window.__marker`` once loaded, and a full reload would wipe it out.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import Browser, Locator, Page, WebSocketRoute, expect

from oversight.accounts import roles
from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.models import ApprovalVote
from oversight.gateway.models import Action
from oversight.gateway.tasks import expire_due_actions
from oversight.killswitch.models import KillSwitch
from oversight.live import groups
from oversight.policy.models import Rule
from oversight.policy.services import policy_object_create
from oversight_sdk import ActionExpired, ActionHalted, ActionRejected, Oversight
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import (
    REFUND,
    expire,
    grant_refunds,
    held_action,
    hold_large_refunds,
)
from tests.servers import wait_until_the_server_listens

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw"  # every user from tests/conftest.py's make_user
SHOTS = Path(tempfile.gettempdir()) / "oversight-shots"  # /tmp/oversight-shots
SDK_WAIT = 20  # seconds a guarded call waits for a reviewer
# Set before any page script runs: htmx's ws extension fires htmx:wsOpen on <body>.
RECORD_SOCKET_OPEN = (
    "document.addEventListener('htmx:wsOpen', () => { window.__socketOpen = true; });"
)


@dataclass(frozen=True)
class Scene:
    """The refund bot with refunds over 500 held, a production token, and the people."""

    agent: Agent
    raw_token: str
    rita: Any
    rob: Any
    admin: Any


@pytest.fixture
def scene(django_user_model: Any, agent: Agent, reviewer: Any, admin_user: Any) -> Scene:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    rob = make_user(django_user_model, "rob", roles.REVIEWER)
    for person in (reviewer, rob):
        agent_access_grant(actor=SYSTEM, agent=agent, user=person, level="reviewer")
    grant_refunds(agent)  # payments.refund on stripe:charge/*
    hold_large_refunds(agent)  # hold when params.amount > 500
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    return Scene(agent, raw, reviewer, rob, admin_user)


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    expect(page.get_by_role("heading", name="Log in to Oversight")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def open_as(browser: Browser, live_url: str) -> Iterator[Callable[[str, str], Page]]:
    """``open_as(username, path)``: a browser context of that person's own, logged in
    through the login page, showing ``path`` with its live socket open. Closed after
    the test; an uncaught JavaScript error in any of them fails it."""
    contexts, js_errors = [], []

    def open_page(username: str, path: str) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        context.add_init_script(RECORD_SOCKET_OPEN)
        page = context.new_page()
        page.on("pageerror", lambda error: js_errors.append(f"{username}: {error}"))
        page.goto(f"{live_url}{path}")
        log_in(page, username)
        expect(page).to_have_url(f"{live_url}{path}")
        page.wait_for_function("window.__socketOpen === true")
        page.evaluate("window.__marker = 1")  # a full page load would wipe this out
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not js_errors, f"JavaScript errors in the pages: {js_errors}"


def not_reloaded(page: Page) -> bool:
    return page.evaluate("window.__marker") == 1


@dataclass
class GuardedRefund:
    """An agent's guarded refund running in a background thread, as a real agent would:
    ``ended`` records whether the block ran, its recorded result, or the error."""

    thread: threading.Thread
    ended: dict[str, Any]

    def join(self) -> dict[str, Any]:
        self.thread.join(timeout=SDK_WAIT + 5)
        assert not self.thread.is_alive(), "the guarded call is still waiting"
        return self.ended


def refund_in_thread(url: str, raw_token: str, amount: int = 900) -> GuardedRefund:
    ended: dict[str, Any] = {}

    def guarded_refund() -> None:
        try:
            with (
                Oversight(url, raw_token) as client,
                client.guard(
                    REFUND,
                    resource="stripe:charge/ch_1",
                    params={"amount": amount},
                    timeout=SDK_WAIT,
                ) as g,
            ):
                ended["ran"] = True
                g.after = {"refunded": amount}
            ended["result"] = g.result.status if g.result else None
        except Exception as exc:
            ended["error"] = exc

    thread = threading.Thread(target=guarded_refund, daemon=True)
    thread.start()
    return GuardedRefund(thread, ended)


def the_held_item(page: Page) -> tuple[Locator, str]:
    """The one held action in the page's queue, and its action id."""
    items = page.locator("#approval-queue article.queue-item")
    expect(items).to_have_count(1)
    item_id = items.first.get_attribute("id") or ""
    assert item_id.startswith("queue-")
    return page.locator(f"#{item_id}"), item_id.removeprefix("queue-")


def screenshot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / name, full_page=True)


def test_a_held_refund_appears_live_for_both_reviewers_and_runs_once_approved(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    rob = open_as("rob", "/approvals/")
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
    for page in (rita, rob):
        expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()

    refund = refund_in_thread(live_url, scene.raw_token)

    item, action_id = the_held_item(rita)
    expect(item).to_contain_text("payments.refund on stripe:charge/ch_1")
    expect(item).to_contain_text("large refunds")  # why it is held
    expect(item.locator("pre.json")).to_contain_text('"amount": 900')
    expect(item).to_contain_text("Votes 0 of 1")
    expect(item.get_by_role("link", name="Full story")).to_have_attribute(
        "href", f"/actions/{action_id}/"
    )
    expect(item.locator(".countdown")).to_have_text(re.compile(r"^expires in 1[45]m \d+s$"))
    expect(rita.get_by_text("Nothing is waiting for you.")).to_be_hidden()
    expect(rob.locator(f"#queue-{action_id}")).to_be_visible()
    assert not_reloaded(rita) and not_reloaded(rob)
    assert Action.objects.get(pk=action_id).status == "pending"
    assert refund.thread.is_alive() and not refund.ended  # the agent is waiting
    screenshot(rita, "approvals-queue.png")

    item.get_by_role("button", name="Approve").click()

    assert refund.join() == {"ran": True, "result": "succeeded"}
    action = Action.objects.get(pk=action_id)
    assert (action.status, action.after) == ("succeeded", {"refunded": 900})
    assert list(action.votes.values_list("voter__username", "vote")) == [("rita", "approve")]
    for page in (rob, rita):
        expect(page.locator(f"#queue-{action_id}")).to_have_count(0)
        expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
        assert not_reloaded(page)
    # The card left her queue; what her vote did is said above it (and to no one else).
    expect(rita.locator("#vote-status")).to_have_text(
        "You approved payments.refund on stripe:charge/ch_1 (Refund bot). Full story"
    )
    expect(rob.locator("#vote-status")).to_be_hidden()


def test_a_denial_needs_a_comment_and_then_rejects_the_waiting_call(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
    refund = refund_in_thread(live_url, scene.raw_token)
    item, action_id = the_held_item(rita)

    item.get_by_role("button", name="Deny").click()
    expect(item.get_by_role("alert")).to_have_text("Say why you deny it.")
    expect(item.get_by_role("button", name="Approve")).to_be_visible()  # still decidable
    assert Action.objects.get(pk=action_id).status == "pending"
    assert not ApprovalVote.objects.exists()
    assert refund.thread.is_alive() and not refund.ended
    screenshot(rita, "deny-without-comment.png")

    item.get_by_label("Comment").fill("Already refunded by hand in ticket T-88.")
    item.get_by_role("button", name="Deny").click()

    expect(rita.locator(f"#queue-{action_id}")).to_have_count(0)
    assert not_reloaded(rita)
    ended = refund.join()
    assert "ran" not in ended
    assert isinstance(ended["error"], ActionRejected)
    assert not isinstance(ended["error"], ActionExpired)
    assert ended["error"].status == "rejected"
    assert Action.objects.get(pk=action_id).status == "rejected"
    vote = ApprovalVote.objects.get()
    assert (vote.voter, vote.vote, vote.comment) == (
        scene.rita,
        "deny",
        "Already refunded by hand in ticket T-88.",
    )


def test_approving_on_the_actions_own_page_shows_its_new_state(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    """The link an agent or the MCP proxy hands out opens the action's own page; a vote
    there shows the whole page anew (its status and story), saying what the vote did."""
    refund = refund_in_thread(live_url, scene.raw_token)
    held = held_action()
    rita = open_as("rita", f"/actions/{held.pk}/")
    expect(rita.locator("h1 .pill")).to_have_text("Waiting for approval")
    expect(rita.get_by_role("button", name="Approve")).to_be_visible()
    expect(rita.get_by_role("link", name="Full story")).to_have_count(0)  # this is it

    rita.get_by_role("button", name="Approve").click()

    expect(rita.get_by_text("You approved this action.")).to_be_visible()
    expect(rita.locator("h1 .pill")).not_to_have_text("Waiting for approval")
    expect(rita.locator(".history")).to_contain_text("Waiting for approval → Approved")
    expect(rita.get_by_role("button", name="Approve")).to_have_count(0)
    screenshot(rita, "action-page-approved.png")
    assert refund.join() == {"ran": True, "result": "succeeded"}
    rita.reload()
    expect(rita.locator("h1 .pill")).to_have_text("Succeeded")


def test_an_actions_page_follows_the_action_as_it_is_decided_and_run(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    """Someone watching a held action's page (its owner, here) sees a reviewer approve it
    and then its outcome, as they happen, with no reload: the page is told over its
    socket that its action changed and reads its status, facts and story again."""
    refund = refund_in_thread(live_url, scene.raw_token)
    held = held_action()
    alice = open_as("alice", f"/actions/{held.pk}/")
    expect(alice.locator("h1 .pill")).to_have_text("Waiting for approval")
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.agent_feed(scene.agent.pk))

    rita.get_by_role("button", name="Approve").click()

    assert refund.join() == {"ran": True, "result": "succeeded"}
    expect(alice.locator("h1 .pill")).to_have_text("Succeeded")
    expect(alice.locator(".history")).to_contain_text("Waiting for approval → Approved")
    expect(alice.locator(".facts")).to_contain_text("Finished")
    assert not_reloaded(alice)


def test_the_kill_switch_banner_reaches_every_open_page_and_halts_the_agent(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.EVERYONE)
    alice = open_as("alice", "/")
    admin = open_as("ada", "/")
    reason = "Refunds are going to the wrong customers (INC-4521)."
    banner = {
        page: page.locator("#killswitch-banners .banner", has_text=reason)
        for page in (rita, alice, admin)
    }

    admin.locator(".topbar .ks-control summary", has_text="Kill switch").click()
    admin.get_by_label("Reason").fill(reason)
    screenshot(admin, "killswitch-form.png")
    admin.get_by_role("button", name="Stop every agent").click()

    expect(admin.get_by_text("Kill switch for everything engaged")).to_be_visible()
    for page in (admin, rita, alice):
        expect(banner[page]).to_be_visible()
        expect(banner[page]).to_contain_text("Kill switch engaged for everything")
    assert not_reloaded(rita) and not_reloaded(alice)
    switch = KillSwitch.objects.get(scope="global")
    assert (switch.engaged, switch.reason, switch.changed_by) == (True, reason, scene.admin)

    ran = []
    with (
        Oversight(live_url, scene.raw_token) as client,
        pytest.raises(ActionHalted) as halted,
        client.guard(REFUND, resource="stripe:charge/ch_2", params={"amount": 20}),
    ):
        ran.append(True)
    assert not ran
    assert halted.value.reasons[0].kind == "killswitch"
    # The owner's overview shows the halted action as it happens.
    expect(alice.locator(f"#action-feed #action-{halted.value.action_id}")).to_contain_text(
        "Halted by a kill switch"
    )
    screenshot(alice, "killswitch-banner.png")

    admin.locator(".topbar .ks-control summary", has_text="Kill switch").click()
    admin.get_by_label("Reason").fill("Fixed the customer lookup (INC-4521).")
    admin.get_by_role("button", name="Release every agent").click()

    expect(admin.get_by_text("Kill switch for everything released.")).to_be_visible()
    for page in (admin, rita, alice):
        expect(banner[page]).to_have_count(0)
    assert not_reloaded(rita) and not_reloaded(alice)
    assert not KillSwitch.objects.get(scope="global").engaged


def test_a_held_action_nobody_decided_expires_and_leaves_the_queue(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    with Oversight(live_url, scene.raw_token) as client:
        held = client.ask(REFUND, "stripe:charge/ch_3", params={"amount": 900})
        assert held.status == "pending"
        rita = open_as("rita", "/approvals/")
        wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
        item = rita.locator(f"#queue-{held.id}")
        expect(item).to_be_visible()

        # Nobody reads the action (a read would expire it too): only the beat job does.
        expire(Action.objects.get(pk=held.id))
        assert expire_due_actions.apply().get() == 1

        expect(item).to_have_count(0)
        assert not_reloaded(rita)
        rita.goto(f"{live_url}/actions/{held.id}/")
        expect(rita.locator("h1 .pill")).to_have_text("Expired")
        expect(rita.locator(".history-entry").last).to_contain_text("action.expired")
        expect(rita.get_by_role("button", name="Approve")).to_have_count(0)
        screenshot(rita, "expired-action.png")
        assert client.get(held.id).status == "expired"
    assert Action.objects.get(pk=held.id).status == "expired"


def test_the_overview_stops_saying_there_are_no_actions_once_one_arrives(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    alice = open_as("alice", "/")
    wait_until_the_server_listens(groups.agent_feed(scene.agent.pk))
    empty_note = alice.get_by_text("No actions yet. They appear here as agents ask.")
    expect(empty_note).to_be_visible()

    with Oversight(live_url, scene.raw_token) as client:
        allowed = client.ask(REFUND, "stripe:charge/ch_4", params={"amount": 20})

    expect(alice.locator(f"#action-feed #action-{allowed.id}")).to_contain_text("Allowed")
    assert not_reloaded(alice)
    screenshot(alice, "overview-first-action.png")
    expect(empty_note).to_be_hidden(timeout=2_000)  # the row is there already


def test_a_held_action_arriving_live_takes_its_place_by_deadline(
    open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    very_large = Rule(
        agent=scene.agent,
        name="very large refunds",
        effect="hold",
        action=REFUND,
        condition="params.amount > 5000",
        expires_in_seconds=120,
    )
    policy_object_create(actor=SYSTEM, obj=very_large)
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
    headers = {"Authorization": f"Bearer {scene.raw_token}"}

    def hold(amount: int, charge: str) -> str:
        body = {"action": REFUND, "resource": f"stripe:charge/{charge}"}
        body["params"] = {"amount": amount}
        response = httpx.post(f"{live_url}/api/v1/actions", json=body, headers=headers)
        assert response.json()["status"] == "pending", response.text
        return response.json()["id"]

    later = hold(900, "ch_later")  # 15 minutes to decide
    expect(rita.locator(f"#queue-{later}")).to_be_visible()
    sooner = hold(9000, "ch_sooner")  # both rules hold: the shorter deadline applies
    expect(rita.locator(f"#queue-{sooner}")).to_be_visible()
    ids = rita.locator("#approval-queue article.queue-item").evaluate_all(
        "items => items.map(item => item.id)"
    )
    assert ids == [f"queue-{sooner}", f"queue-{later}"]
    assert not_reloaded(rita)


def test_an_approval_from_a_card_loaded_before_an_edit_is_refused_and_shows_the_edit(
    browser: Browser, open_as: Callable[[str, str], Page], live_url: str, scene: Scene
) -> None:
    """Two approvals needed; rob approves with edits, and rita clicks Approve on the card
    she loaded when it said 900. Her page's live updates are held back here (a slow
    network, a socket reconnecting): her card is stale when she clicks, and her approval
    must not count for params she never saw."""
    two_people = Rule(
        agent=scene.agent,
        name="two people for large refunds",
        effect="hold",
        action=REFUND,
        condition="params.amount > 500",
        approvals=2,
    )
    policy_object_create(actor=SYSTEM, obj=two_people)
    rob = open_as("rob", "/approvals/")
    held_back = {"now": False}  # rita's socket: what the server sends her is dropped

    def rita_socket(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        server.on_message(lambda message: None if held_back["now"] else socket.send(message))

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(RECORD_SOCKET_OPEN)
    context.route_web_socket(re.compile(r"/ws/live/"), rita_socket)
    js_errors: list[str] = []
    try:
        rita = context.new_page()
        rita.on("pageerror", lambda error: js_errors.append(str(error)))
        rita.goto(f"{live_url}/approvals/")
        log_in(rita, "rita")
        rita.wait_for_function("window.__socketOpen === true")
        wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
        response = httpx.post(
            f"{live_url}/api/v1/actions",
            json={"action": REFUND, "resource": "stripe:charge/ch_1", "params": {"amount": 900}},
            headers={"Authorization": f"Bearer {scene.raw_token}"},
        )
        assert response.json()["status"] == "pending", response.text
        card, action_id = the_held_item(rita)
        expect(card).to_contain_text("Votes 0 of 2")
        expect(card.locator("pre.json").first).to_contain_text('"amount": 900')
        held_back["now"] = True

        rob_card = rob.locator(f"#queue-{action_id}")
        rob_card.get_by_text("Edit and approve").click()
        rob_card.get_by_label("Params to approve").fill('{"amount": 4900}')
        rob_card.get_by_role("button", name="Approve with these params").click()
        # He has nothing more to decide: his card says so, without buttons.
        expect(rob.locator(f"#voted-{action_id}")).to_contain_text(
            "You approved this (1 of 2); waiting for another reviewer."
        )
        expect(rob_card).to_have_count(0)
        action = Action.objects.get(pk=action_id)
        assert (action.status, action.params) == ("pending", {"amount": 4900})
        expect(card.locator("pre.json").first).to_contain_text('"amount": 900')  # stale

        card.get_by_role("button", name="Approve").click()

        expect(card.get_by_role("alert")).to_contain_text(
            "This action was edited since you loaded it"
        )
        expect(card).to_contain_text("Params as edited by a reviewer")
        expect(card.locator("pre.json").nth(1)).to_contain_text('"amount": 4900')
        # Why the edited params are held: by the same rules as 900, said once.
        expect(card).to_contain_text("The same rules hold the edited params.")
        expect(card).to_contain_text("Votes 1 of 2")
        assert Action.objects.get(pk=action_id).status == "pending"
        assert not ApprovalVote.objects.filter(action_id=action_id, voter=scene.rita).exists()
        screenshot(rita, "stale-card-refused.png")

        card.get_by_role("button", name="Approve").click()  # she read it; 4900 it is

        expect(card).to_contain_text("Approved")
        action = Action.objects.get(pk=action_id)
        assert (action.status, action.params) == ("approved", {"amount": 4900})
        assert action.votes.get(voter=scene.rita, superseded=False).vote == "approve"
    finally:
        context.close()
    assert not js_errors, f"JavaScript errors in rita's page: {js_errors}"
