"""An owner settles, in Chromium, an approved refund the agent started and never
reported: the action's page says its outcome is not known, the owner records that it did
not run and what they checked, and the page shows it cancelled with that note."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db.models import F
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from oversight.gateway.models import Action
from oversight.gateway.settling import SETTLE_AFTER
from oversight.policy.models import LimitCounter
from oversight_sdk import Oversight
from tests.browser.a11y import unnamed_controls
from tests.browser.test_registry_flow import log_in
from tests.browser.ui import shot
from tests.conftest import SYSTEM
from tests.gateway.helpers import limit_create, refund, refund_policy_create

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOTE = "No refund for ch_1 in Stripe's dashboard; the agent's process was killed first"


def test_an_owner_records_that_a_started_refund_did_not_run(
    page: Page, live_url: str, owner: Any, reviewer: Any, agent: Agent
) -> None:
    refund_policy_create(agent)
    limit_create(agent=agent, max_count=5)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    with Oversight(live_url, raw, timeout=5, retries=1) as client:
        held = client.ask("payments.refund", "stripe:charge/ch_1", params=refund(900)["params"])
        approval_vote(user=reviewer, action_id=held.id, vote="approve")
        client.start(held.id)  # then the agent died, never reporting
    ago = SETTLE_AFTER + dt.timedelta(seconds=1)  # and a while passed
    Action.objects.filter(pk=held.id).update(started_at=F("started_at") - ago)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_url}/actions/{held.id}/")
    log_in(page, owner.username)
    settle = page.locator("#settle")
    expect(settle).to_contain_text("Its outcome has not been reported")
    expect(settle).to_contain_text("The agent started it and has not said what happened")
    assert unnamed_controls(page) == []
    shot(page, "settle-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "settle-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Only spaces: the browser sends it; refused, the choice kept, the reason by the field.
    settle.get_by_label("It did not run").check()
    settle.get_by_label("What you checked").fill("   ")
    settle.get_by_role("button", name="Record the outcome").click()
    expect(page.locator(".messages")).to_contain_text("Not recorded: Say what you checked")
    expect(settle.locator(".has-error .error")).to_have_text(
        "Say what you checked, so that others can rely on it."
    )
    expect(settle.get_by_label("It did not run")).to_be_checked()
    shot(page, "settle-refused-1280")

    settle.get_by_label("What you checked").fill(NOTE)
    settle.get_by_role("button", name="Record the outcome").click()
    expect(page.locator(".messages")).to_contain_text("Recorded: it did not run.")
    expect(page.locator("h1")).to_contain_text("Cancelled")
    expect(page.locator("#settle")).to_have_count(0)
    expect(page.get_by_text("Why it was cancelled")).to_be_visible()
    expect(page.locator(".history")).to_contain_text(
        f"Approved → Cancelled (it did not run, recorded by a person): {NOTE}"
    )
    shot(page, "settle-done-1280")
    assert Action.objects.get(pk=held.id).status == "cancelled"
    assert LimitCounter.objects.get().count == 0
