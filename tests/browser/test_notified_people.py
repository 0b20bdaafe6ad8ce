"""People are told where they are, and decide from there: an emailed link decides a
held action in two clicks, the inbox digests a flood of held actions, and the dev
outbox shows the emails of a run with no mail server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from oversight.accounts import roles
from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.gateway.models import Action
from oversight.notifications.constants import DIGEST_AFTER
from oversight.notifications.delivery import notification_deliver
from oversight.notifications.models import Notification
from oversight.notifications.services import notify_action_held
from tests.browser.a11y import low_contrast, unnamed_controls
from tests.browser.test_approvals_flow import Scene, log_in, refund_in_thread
from tests.browser.ui import DESKTOP, PHONE, shot
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import grant_refunds, hold_large_refunds
from tests.notifications.conftest import hold, set_channels
from tests.servers import asgi_server

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scene(django_user_model: Any, agent: Agent, reviewer: Any, admin_user: Any) -> Scene:
    """The refund bot holding refunds over 500, reviewed by Rita and Rob, with a token."""
    rob = make_user(django_user_model, "rob", roles.REVIEWER)
    for person in (reviewer, rob):
        agent_access_grant(actor=SYSTEM, agent=agent, user=person, level="reviewer")
    grant_refunds(agent)
    hold_large_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    return Scene(agent, raw, reviewer, rob, admin_user)


def _wait_for_email(address: str) -> Notification:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        row = Notification.objects.filter(channel="email", recipient=address).first()
        if row is not None:
            return row
        time.sleep(0.1)
    raise AssertionError(f"no email to {address} was created")


def _decide_link(body: str) -> str:
    (line,) = [x for x in body.splitlines() if x.startswith("Decide it: ")]
    return line.removeprefix("Decide it: ")


def assert_no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width}px wide"


def test_an_emailed_link_decides_an_action_in_two_clicks(
    page: Page, live_url: str, scene: Scene, mailoutbox: list
) -> None:
    set_channels(scene.agent.team, email=True)
    refund = refund_in_thread(live_url, scene.raw_token)

    # The server told Rita; her email waits for a worker. Send it here, as a worker would.
    row = _wait_for_email(scene.rita.email)
    assert notification_deliver(notification_id=row.pk).state == "sent"
    (mail,) = [m for m in mailoutbox if m.to == [scene.rita.email]]
    assert "Approval needed: payments.refund on stripe:charge/ch_1" in mail.subject
    link = _decide_link(mail.body)
    # Links are absolute under SITE_URL; this test's server listens on another port.
    path = link.removeprefix(settings.SITE_URL.rstrip("/"))
    assert path.startswith("/links/")
    action = Action.objects.get(pk=row.action_id)

    page.goto(f"{live_url}{path}")  # click one: the link in the email
    log_in(page, "rita")
    expect(page).to_have_url(f"{live_url}/actions/{action.pk}/")
    decision = page.locator("#action-decision")
    expect(decision).to_contain_text("payments.refund on stripe:charge/ch_1")
    assert Action.objects.get(pk=action.pk).status == "pending"  # the link decided nothing
    shot(page, "decision-link-action")
    decision.get_by_role("button", name="Approve").click()  # click two

    assert refund.join() == {"ran": True, "result": "succeeded"}
    assert list(action.votes.values_list("voter__username", "vote")) == [("rita", "approve")]

    # The link was single-use: following it again says so, and still leads to the action.
    page.goto(f"{live_url}{path}")
    expect(page.get_by_role("heading", name="This link was already used")).to_be_visible()
    page.get_by_role("link", name="Open the action").click()
    expect(page).to_have_url(f"{live_url}/actions/{action.pk}/")


def test_someone_else_following_the_link_is_told_and_can_switch(
    page: Page, live_url: str, scene: Scene
) -> None:
    set_channels(scene.agent.team, email=True)
    action = hold(scene.agent)
    notify_action_held(action_id=action.pk)
    item = scene.rita.inbox_items.get()
    page.goto(f"{live_url}{item.link}")
    log_in(page, "rob")
    expect(page.get_by_role("heading", name="This link was sent to someone else")).to_be_visible()
    assert unnamed_controls(page) == [] and low_contrast(page) == []
    shot(page, "decision-link-foreign")
    page.get_by_role("button", name="Log in as rita").click()
    log_in(page, "rita")
    expect(page).to_have_url(f"{live_url}/actions/{action.pk}/")
    expect(page.locator("#action-decision").get_by_role("button", name="Approve")).to_be_visible()


def test_a_flood_of_held_actions_is_one_digest_in_the_inbox(
    browser: Browser, live_url: str, scene: Scene
) -> None:
    for i in range(40):
        notify_action_held(action_id=hold(scene.agent, resource=f"stripe:charge/ch_{i}").pk)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{live_url}/inbox/")
    log_in(page, "rita")
    items = page.locator(".inbox-item")
    expect(items).to_have_count(DIGEST_AFTER + 1)
    expect(page.locator("#inbox-badge")).to_have_text(str(DIGEST_AFTER + 1))
    digest = items.first
    expect(digest).to_contain_text("40 actions of Refund bot are waiting for approval")
    expect(digest).to_contain_text("Held actions waiting")
    shot(page, "inbox-digest")
    page.set_viewport_size(PHONE)
    assert_no_sideways_scroll(page)
    shot(page, "inbox-digest-phone")
    page.set_viewport_size(DESKTOP)

    # One of the first few, one by one: its link opens that action for her.
    single = items.filter(has_text="stripe:charge/ch_2")
    single.get_by_role("link").click()
    second = Action.objects.get(agent=scene.agent, resource="stripe:charge/ch_2")
    expect(page).to_have_url(f"{live_url}/actions/{second.pk}/")
    page.go_back()
    page.get_by_role("link", name="40 actions of Refund bot are waiting for approval").click()
    expect(page).to_have_url(f"{live_url}/approvals/")
    context.close()


@pytest.fixture
def outbox_url(transactional_db: None) -> Iterator[str]:
    """A server as in the zero-install run: the dev outbox on."""
    env = {"ALLOWED_HOSTS": "127.0.0.1", "DJANGO_ALLOW_ASYNC_UNSAFE": "", "DEV_OUTBOX": "1"}
    with asgi_server(extra_env=env) as url:
        yield url


def test_the_dev_outbox_lets_a_reviewer_follow_an_emailed_link(
    page: Page, outbox_url: str, scene: Scene
) -> None:
    set_channels(scene.agent.team, email=True)
    action = hold(scene.agent)
    notify_action_held(action_id=action.pk)
    page.goto(f"{outbox_url}/inbox/")
    log_in(page, "rita")
    page.get_by_role("link", name="outbox").click()
    mail = page.locator(".outbox-mail")
    expect(mail).to_have_count(1)  # hers only, not Rob's
    expect(mail).to_contain_text("To rita@example.com")
    shot(page, "dev-outbox")
    assert unnamed_controls(page) == [] and low_contrast(page) == []
    page.set_viewport_size(PHONE)
    assert_no_sideways_scroll(page)
    shot(page, "dev-outbox-phone")
    page.set_viewport_size(DESKTOP)
    mail.locator("a[href^='/links/']").click()
    expect(page).to_have_url(f"{outbox_url}/actions/{action.pk}/")
    page.locator("#action-decision").get_by_role("button", name="Approve").click()
    deadline = time.monotonic() + 10
    while Action.objects.get(pk=action.pk).status != "approved":
        assert time.monotonic() < deadline, "the approval did not arrive"
        time.sleep(0.1)
