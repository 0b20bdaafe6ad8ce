"""The policy page's "try it" box, in Chromium: it answers what the gateway would, through
the same pipeline, and charges and records nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import agent_update
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.policy.models import LimitCounter
from tests.browser.test_registry_flow import SHOTS, log_in
from tests.conftest import SYSTEM
from tests.gateway.helpers import grant_refunds, hold_large_refunds, limit_create

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _try(page: Page, params: dict[str, Any]) -> None:
    body = {"action": "payments.refund", "resource": "stripe:charge/ch_1", "params": params}
    page.locator("#try-it textarea").fill(json.dumps(body))
    with page.expect_response(lambda response: response.url.endswith("/policy/try/")):
        page.get_by_role("button", name="Decide").click()
    page.wait_for_load_state("networkidle")  # the answer swapped in before the next try


def test_an_owner_tries_actions_and_sees_what_the_gateway_would_decide(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    grant_refunds(agent)
    hold_large_refunds(agent)
    limit_create(agent=agent, name="refund total", sum_param="amount", max_sum=1000)
    events = AuditEvent.objects.count()

    page.goto(f"{live_url}/agents/{agent.slug}/policy/")
    log_in(page, owner.username)
    verdict = page.locator("#try-it .verdict")

    _try(page, {"amount": 100})
    expect(verdict).to_contain_text("Would be allowed")
    expect(page.locator("#try-it")).to_contain_text("refund total")

    _try(page, {"amount": -5})  # a negative amount would give quota back
    expect(verdict).to_contain_text("Would be denied")
    expect(page.locator("#try-it")).to_contain_text("missing, negative or not a number")

    _try(page, {"amount": "NaN"})
    expect(verdict).to_contain_text("Would be denied")

    Agent.objects.filter(pk=agent.pk).update(hold_all=True, hold_all_reason="Alert #3: spike")
    _try(page, {"amount": 100})
    expect(verdict).to_contain_text("Would be pending")
    expect(page.locator("#try-it")).to_contain_text("Alert #3: spike")

    agent_update(actor=SYSTEM, agent=agent, status="paused")
    _try(page, {"amount": 100})
    expect(verdict).to_contain_text("Would be refused")
    expect(page.locator("#try-it")).to_contain_text("is paused")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(Path(SHOTS) / "policy-tryit-refused.png"), full_page=True)

    assert not Action.objects.exists()
    assert not LimitCounter.objects.filter(count__gt=0).exists()
    assert AuditEvent.objects.count() == events + 1  # the pause only
