"""Chromium and the server's permessage-deflate (oversight/live/websocket.py): the browser
accepts server_no_context_takeover and applies message after message, each compressed
from a fresh context and shared with the other sockets."""

from __future__ import annotations

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
from tests.gateway.helpers import grant_refunds, refund
from tests.servers import asgi_server, wait_until_the_server_listens

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# What the browser negotiated, as the page's WebSocket reports it once open.
RECORD_EXTENSIONS = """
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('open', () => { window.__socketExtensions = this.extensions; });
  }
};
"""


@pytest.fixture
def server_url(transactional_db: None) -> Iterator[str]:
    env = {"ALLOWED_HOSTS": "127.0.0.1", "DJANGO_ALLOW_ASYNC_UNSAFE": ""}
    with asgi_server(extra_env=env) as url:
        yield url


def _open(browser: Browser, url: str, username: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(RECORD_EXTENSIONS)
    page = context.new_page()
    page.goto(f"{url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/")
    page.wait_for_function("window.__socketExtensions !== undefined")
    return page


def test_chromium_negotiates_shared_compression_and_applies_every_message(
    browser: Browser, server_url: str, agent: Agent, reviewer: Any, owner: Any
) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    grant_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    pages = [_open(browser, server_url, user.username) for user in (reviewer, owner)]
    wait_until_the_server_listens(groups.agent_feed(agent.pk))
    errors: list[str] = []
    for page in pages:
        page.on("pageerror", lambda error: errors.append(str(error)))
        extensions = page.evaluate("window.__socketExtensions")
        assert extensions.startswith("permessage-deflate"), extensions
        assert "server_no_context_takeover" in extensions, extensions

    ids = []
    with httpx.Client(
        base_url=server_url, headers={"Authorization": f"Bearer {raw}"}, timeout=10
    ) as api:
        for i in range(5):  # one by one: several messages, each decompressed on its own
            response = api.post("/api/v1/actions", json=refund(20, charges=(f"ch_{i}",)))
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
            for page in pages:
                expect(page.locator(f"#action-feed tr#action-{ids[-1]}")).to_be_visible()

    for page in pages:
        expect(page.locator("#action-feed tr")).to_have_count(len(ids))
        page.context.close()
    assert not errors, errors
