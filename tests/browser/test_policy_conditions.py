"""The add-rule form as an owner uses it, in Chromium: it lists the variables and the
agent's parameters with their types, and refuses a condition that cannot work, in words,
on the field, keeping what was typed (issue 13, item 8)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.policy.models import Rule
from tests.browser.test_registry_flow import SHOTS, log_in
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, refund

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_owner_sees_the_variables_and_a_condition_that_cannot_work_is_refused(
    page: Page, live_url: str, owner: Any, agent: Agent, reviewer: Any
) -> None:
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    grant_refunds(agent)
    # someone who can approve what a hold rule holds, or the rule is refused
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    for amount in (120, 900):
        decide(token, refund(amount))

    page.goto(f"{live_url}/agents/{agent.slug}/policy/")
    log_in(page, "alice")
    rules = page.locator("#rules")
    rules.locator("summary", has_text="Add rule").click()
    condition = rules.get_by_label("When (CEL)")
    expect(condition).to_be_visible()
    help_ = rules.locator("#condition-help")
    expect(help_).to_be_visible()
    variables = help_.locator("table").first
    for name, kind in [("params", "map"), ("agent", "map of strings"), ("time", "timestamp")]:
        expect(variables.locator("tr", has=page.locator(f"td:text-is('{name}')"))).to_contain_text(
            kind
        )
    refunds = help_.locator("table").nth(1).locator("tr", has_text="payments.refund")
    expect(refunds.locator("td").nth(1)).to_have_text(
        "params.amount number, params.charges list of strings"
    )
    described = condition.get_attribute("aria-describedby")
    assert described == "condition-help"
    page.set_viewport_size({"width": 390, "height": 844})  # on a phone the tables scroll
    right = help_.evaluate("e => e.getBoundingClientRect().right")  # in their own box
    assert right <= 390, f"the help sticks out of a 390 px screen: {right}px"
    page.set_viewport_size({"width": 1280, "height": 800})

    rules.get_by_label("Name").fill("big refunds")
    rules.get_by_label("Effect").select_option("hold")
    rules.get_by_label("Action").fill("payments.refund")
    condition.fill("params.amount > 'abc'")
    rules.get_by_role("button", name="Add rule").click()

    error = page.locator("#rules .field-condition .error")
    expect(error).to_have_text(
        "line 1, column 15: `>` cannot compare a number with a string; params.amount is a "
        "number. Parameter types come from this agent's last 2 matching requests."
    )
    expect(page.locator("#rules").get_by_label("When (CEL)")).to_have_value("params.amount > 'abc'")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "policy-condition-refused.png"), full_page=True)
    assert not Rule.objects.exists()

    page.locator("#rules").get_by_label("When (CEL)").fill("params.amount >")
    page.locator("#rules").get_by_role("button", name="Add rule").click()
    expect(page.locator("#rules .field-condition .error")).to_have_text(
        "line 1, column 16: the condition ends too early: a value (a name such as "
        "params.amount, a number, a quoted string or a bracket) was expected"
    )

    page.locator("#rules").get_by_label("When (CEL)").fill("params.amount > 500")
    page.locator("#rules").get_by_role("button", name="Add rule").click()
    expect(page.get_by_text("Added rule big refunds.")).to_be_visible()
    assert Rule.objects.get().condition == "params.amount > 500"
