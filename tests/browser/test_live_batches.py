"""Coalesced live fragments as Chromium applies them: several changes within one window
(oversight/live/batches.py) reach open pages together and leave them right, on the
overview, the agent's page and the approval queue.

The server coalesces over a long window here, so that everything the test does falls into
one: a row created and updated in the same message, a queue item that comes and goes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.live import groups
from tests.conftest import SYSTEM
from tests.gateway.helpers import grant_refunds, hold_large_refunds, refund
from tests.servers import asgi_server, wait_until_the_server_listens

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WINDOW_S = 3  # longer than the three requests below take, even on a busy machine
RECORD_SOCKET_OPEN = (
    "document.addEventListener('htmx:wsOpen', () => { window.__socketOpen = true; });"
)


@pytest.fixture
def slow_window_url(transactional_db: None) -> Iterator[str]:
    """The real server, coalescing over WINDOW_S seconds."""
    env = {
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_ALLOW_ASYNC_UNSAFE": "",  # the server checks async safety
        "LIVE_BATCH_WINDOW_MS": str(WINDOW_S * 1000),
    }
    with asgi_server(extra_env=env) as url:
        yield url


def _open(browser: Browser, url: str, username: str, path: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(RECORD_SOCKET_OPEN)
    page = context.new_page()
    page.goto(f"{url}{path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}{path}")
    page.wait_for_function("window.__socketOpen === true")
    page.evaluate("window.__marker = 1")  # a full page load would wipe this out
    return page


def test_a_row_created_and_cancelled_in_one_window_shows_cancelled_once(
    browser: Browser, slow_window_url: str, agent: Agent, reviewer: Any
) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    grant_refunds(agent)
    hold_large_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    overview = _open(browser, slow_window_url, reviewer.username, "/")
    agent_page = _open(browser, slow_window_url, reviewer.username, f"/agents/{agent.slug}/")
    queue = _open(browser, slow_window_url, reviewer.username, "/approvals/")
    for group in (groups.agent_feed(agent.pk), groups.agent_queue(agent.pk)):
        wait_until_the_server_listens(group)
    errors: list[str] = []
    for page in (overview, agent_page, queue):
        page.on("pageerror", lambda error: errors.append(str(error)))

    with httpx.Client(
        base_url=slow_window_url, headers={"Authorization": f"Bearer {raw}"}, timeout=10
    ) as api:
        started = time.monotonic()
        first = api.post("/api/v1/actions", json=refund(900, charges=("ch_1",))).json()
        second = api.post("/api/v1/actions", json=refund(900, charges=("ch_2",))).json()
        cancelled = api.post(f"/api/v1/actions/{first['id']}/cancel").json()
        took = time.monotonic() - started
    assert (first["status"], second["status"], cancelled["status"]) == (
        "pending",
        "pending",
        "cancelled",
    )
    assert took < WINDOW_S, f"the requests took {took:.1f} s, more than one window"

    # Both feeds (the overview's, the agent's): the first action's row once, replaced in
    # place by its update; the second's waiting.
    for page, feed in ((overview, "#action-feed"), (agent_page, f"#agent-{agent.pk}-feed")):
        rows = page.locator(f"{feed} tr#action-{first['id']}")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("Cancelled")
        expect(page.locator(f"{feed} tr#action-{second['id']}")).to_contain_text(
            "Waiting for approval"
        )
        expect(page.locator(f"{feed} tr")).to_have_count(2)
    # The queue: the first item came and went in the same message; the second stays.
    expect(queue.locator(f"#queue-{second['id']}")).to_be_visible()
    expect(queue.locator(f"#queue-{first['id']}")).to_have_count(0)
    expect(queue.locator("#approval-queue article.queue-item")).to_have_count(1)
    for page in (overview, agent_page, queue):
        assert page.evaluate("window.__marker") == 1, "the page was reloaded"
        page.context.close()
    assert not errors, errors
