"""A live page whose socket drops catches up when it is back (here the server restarts,
as in a deploy): meanwhile it says its updates are paused; then it shows what happened
while it was down, without a reload, and nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.gateway.models import Action
from oversight.live import broadcasts, groups, publish
from oversight_sdk import Oversight
from tests.browser.test_approvals_flow import RECORD_SOCKET_OPEN, log_in, not_reloaded
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, decide, grant_refunds, hold_large_refunds, refund
from tests.servers import asgi_server, free_port, wait_until_the_server_listens

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SERVER_ENV = {"ALLOWED_HOSTS": "127.0.0.1", "DJANGO_ALLOW_ASYNC_UNSAFE": ""}
# htmx's ws extension retries after 0 to 1 s, then 0 to 2 s, 0 to 4 s...; the server
# takes a few seconds to start.
BACK_MS = 40_000


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def errors() -> Iterator[list[str]]:
    """JavaScript errors in any page of the test, which fail it."""
    found: list[str] = []
    yield found
    assert not found, f"JavaScript errors in the pages: {found}"


def open_page(browser: Browser, url: str, path: str, username: str, errors: list[str]) -> Page:
    """A context of its own, logged in, showing ``path`` with its socket open."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(RECORD_SOCKET_OPEN)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{url}{path}")
    log_in(page, username)
    expect(page).to_have_url(f"{url}{path}")
    page.wait_for_function("window.__socketOpen === true")
    page.evaluate("window.__marker = 1")
    return page


def test_a_reviewers_pages_catch_up_after_the_server_restarts(
    browser: Browser, port: int, agent: Agent, reviewer: Any, errors: list[str]
) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    grant_refunds(agent)
    hold_large_refunds(agent)  # over 500
    token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    earlier = decide(token, refund(10))  # on the pages from the start

    with asgi_server(extra_env=SERVER_ENV, port=port) as url:
        queue = open_page(browser, url, "/approvals/", reviewer.username, errors)
        feed = open_page(browser, url, f"/agents/{agent.slug}/", reviewer.username, errors)
        expect(queue.get_by_text("Nothing is waiting for you.")).to_be_visible()
        expect(feed.locator(f"#action-{earlier.pk}")).to_have_count(1)
        for page in (queue, feed):
            expect(page.locator("#live-status")).to_be_hidden()
    # The server has stopped: the sockets are closed, and the pages say so.
    for page in (queue, feed):
        expect(page.locator("#live-status")).to_be_visible()
        expect(page.locator("#live-status")).to_contain_text("Live updates are paused")

    held = decide(token, refund(900))  # while nobody's page can hear of it
    allowed = decide(token, refund(20))
    assert (held.status, allowed.status) == ("pending", "allowed")

    with asgi_server(extra_env=SERVER_ENV, port=port) as url:
        expect(queue.locator(f"#queue-{held.pk}")).to_be_visible(timeout=BACK_MS)
        expect(queue.get_by_text("Nothing is waiting for you.")).to_be_hidden()
        expect(feed.locator(f"#action-{held.pk}")).to_have_count(1, timeout=BACK_MS)
        expect(feed.locator(f"#action-{allowed.pk}")).to_have_count(1)
        for page in (queue, feed):
            expect(page.locator("#live-status")).to_be_hidden()
            assert not_reloaded(page)

        # The new socket carries what happens next; a row the page already has, sent
        # again as new, is not shown twice.
        wait_until_the_server_listens(groups.agent_queue(agent.pk))
        broadcasts.action_changed(allowed.pk, created=True)
        publish.flush_outside_server()
        with Oversight(url, raw) as client:
            later = client.ask(REFUND, "stripe:charge/ch_9", params={"amount": 950})
        assert later.pending
        expect(queue.locator(f"#queue-{later.id}")).to_be_visible()
        expect(feed.locator(f"#action-{later.id}")).to_have_count(1)
        expect(feed.locator(f"#action-{allowed.pk}")).to_have_count(1)
        expect(queue.locator(f"#queue-{held.pk}")).to_have_count(1)
        assert Action.objects.filter(agent=agent).count() == 4
        for page in (queue, feed):
            assert not_reloaded(page)
