"""Live row updates that cross: two processes publish changes of one action (a reviewer's
vote from one, the reported outcome from another), and their messages can reach a page in
the other order. The page keeps the later state: a feed row carries its action's
lifecycle rank (oversight/live/rows.py), and an update of a lower rank than the row shown
is left out (static/js/oversight.js)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant
from oversight.gateway.models import Action
from oversight.live import groups, publish, rows
from tests.browser.ui import log_in
from tests.conftest import SYSTEM
from tests.servers import wait_until_the_server_listens

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _action(agent: Agent, charge: str, status: str) -> Action:
    return Action.objects.create(
        agent=agent,
        action="payments.refund",
        resource=f"stripe:charge/{charge}",
        status=status,
        decision=status,
        request_hash=charge.ljust(64, "0"),
    )


def _send(action: Action, status: str) -> None:
    """The row's update as a process publishes it once `status` is committed: in a
    message of its own."""
    action.status = status
    html = rows.feed_fragment(action, created=False)
    publish.send(
        groups.agent_feed(action.agent_id), html=html, audience="feed", agent_ids=[action.agent_id]
    )
    publish.flush_outside_server()


def test_an_update_older_than_the_row_shown_is_left_out(
    page: Page, live_url: str, agent: Agent, reviewer: Any
) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    held = _action(agent, "ch_1", "pending")
    marker = _action(agent, "ch_2", "allowed")
    page.add_init_script(
        "document.addEventListener('htmx:wsOpen', () => { window.__socketOpen = true; });"
    )
    log_in(page, live_url, reviewer.username, "/")
    page.wait_for_function("window.__socketOpen === true")
    wait_until_the_server_listens(groups.agent_feed(agent.pk))
    row = page.locator(f"#action-feed #action-{held.pk}")
    expect(row).to_contain_text("Waiting for approval")

    _send(held, "failed")  # the outcome, reported after the vote...
    expect(row).to_contain_text("Failed")
    _send(held, "approved")  # ...and the vote's own update, arriving after it
    _send(marker, "succeeded")  # a later message: once it shows, the one before was seen
    expect(page.locator(f"#action-feed #action-{marker.pk}")).to_contain_text("Succeeded")
    expect(row).to_contain_text("Failed")
    expect(row).to_have_attribute("data-rank", "2")

    _send(held, "rolled_back")  # a later state still replaces it
    expect(row).to_contain_text("Rolled back")
