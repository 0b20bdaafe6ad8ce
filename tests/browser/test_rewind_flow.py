"""Undo and rewind in Chromium: an owner undoes one refund from its page, then plans and
starts a rewind of the agent's last hour and watches it end, while the agent's own SDK
worker runs the undos on a toy ledger that keeps state."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.gateway.lifecycle import ResultInput, action_report_result
from oversight.gateway.models import Action
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from oversight.rewind.models import Rewind
from oversight.rewind.runner import rewind_step
from oversight_sdk import CompensationTask, Oversight
from tests.browser.test_registry_flow import SHOTS, log_in
from tests.browser.ui import CARDS, PHONE
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, decide, grant_reversible_refunds, refund

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_owner_undoes_a_refund_then_rewinds_the_last_hour(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    policy_object_create(
        actor=SYSTEM,
        obj=Grant(
            agent=agent,
            action=REFUND,
            resource="stripe:charge/*",
            reversibility="reversible",
            undo_action="payments.charge",
            undo_params={"amount": "params.amount"},
        ),
    )
    policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, action="payments.charge"))
    policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action="email.send", reversibility="irreversible")
    )
    token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    ledger: dict[str, Any] = {}

    def ran(body: dict[str, Any], after: Any) -> Action:
        action = decide(token, {**body, "before": ledger.get(body["resource"])})
        ledger[body["resource"]] = after
        data = ResultInput(outcome="succeeded", after=after)
        return action_report_result(token=token, action_id=action.pk, data=data)

    first = ran(refund(30, charges=("ch_a",)), {"refunded": 30})
    ran(refund(20, charges=("ch_b",)), {"refunded": 20})
    ran(refund(10, charges=("ch_c",)), {"refunded": 10})
    ran({"action": "email.send", "resource": "segment:all"}, {"sent": 900})

    client = Oversight(live_url, raw, timeout=5, retries=1, backoff=0.05)

    @client.compensator(REFUND, read=lambda task: ledger.get(task.original.resource))
    def charge_back(task: CompensationTask) -> Any:
        ledger[task.original.resource] = task.original.before
        return task.original.before

    def work() -> list[str]:
        return [done.outcome for done in client.run_compensators(wait=1, stop=_one_round())]

    # One refund, from its page.
    page.goto(f"{live_url}/actions/{first.pk}/")
    log_in(page, owner.username)
    undo = page.locator("#undo")
    expect(undo).to_contain_text("Its undo is payments.charge, which may be asked for until")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    undo.get_by_role("button", name="Undo this action").click()
    expect(page.locator(".messages")).to_contain_text("The undo was allowed")
    assert asked == [
        f"Undo payments.refund on {first.resource}? Its undo, payments.charge, is asked for"
        " as an action of its own, decided and audited."
    ]
    assert work() == ["undone"]
    page.reload()
    expect(page.locator("#undo table")).to_contain_text("undone")
    expect(page.locator("h1")).to_contain_text("Rolled back")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "undo-one.png", full_page=True)

    # The rest of the last hour, from the agent's page.
    page.goto(f"{live_url}/agents/{agent.slug}/")
    page.get_by_role("link", name="Rewind").click()
    page.get_by_label("Since").fill("1h")
    page.get_by_role("button", name="Plan").click()
    plan = page.locator("#rewind-plan")
    expect(plan).to_contain_text("actions in the window: 2 to undo")
    expect(plan).to_contain_text("left: irreversible")
    expect(plan).to_contain_text("left: already rolled back")
    page.screenshot(path=SHOTS / "rewind-plan.png", full_page=True)
    asked: list[str] = []  # a rewind is started only once the person confirms it
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    plan.get_by_role("button", name="Start the rewind").click()
    progress = page.locator("#rewind-progress")
    expect(progress).to_contain_text("Running")
    assert asked == [
        "Start the rewind: undo 2 actions? Each undo is asked for as an action of its own,"
        " decided and audited."
    ]
    rewind = Rewind.objects.get()
    rewind_step(rewind_id=rewind.pk)
    assert sorted(work()) == ["undone", "undone"]
    rewind_step(rewind_id=rewind.pk)
    expect(progress.locator("h2")).to_have_text("Done", timeout=15_000)  # polled live
    expect(progress).to_contain_text("undone")
    page.screenshot(path=SHOTS / "rewind-done.png", full_page=True)
    # On a phone its rows read as cards, every cell on the screen, the page not wider.
    page.set_viewport_size(PHONE)
    page.reload()
    cards = page.locator("#rewind-progress table").evaluate(CARDS)
    assert cards["cells"] and not cards["header"], cards
    assert not cards["scrolls"] and not cards["outside"], cards
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=SHOTS / "rewind-done-phone.png", full_page=True)
    assert {k: v for k, v in ledger.items() if k.startswith("stripe")} == {
        "stripe:charge/ch_a": None,
        "stripe:charge/ch_b": None,
        "stripe:charge/ch_c": None,
    }
    assert Action.objects.filter(status="rolled_back").count() == 3
    client.close()


def _one_round() -> Any:
    rounds = iter([False, True])
    return lambda: next(rounds)


def test_a_plan_started_twice_runs_its_own_window_once_and_says_nothing_was_undone(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    """The tester's visit: a plan of the last 3 minutes states its absolute window, and
    Start makes one rewind of exactly that window; the same plan started again from
    another tab leads to it; every undo denied by a rule, the rewind says it undid
    nothing, at 1280 px and on a phone."""
    from oversight.policy.models import Rule

    grant_reversible_refunds(agent, {"amount": "params.amount"})
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=agent,
            name="no charge-backs",
            effect="forbid",
            action="payments.charge",
            condition="undo",
        ),
    )
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    for charge in ("ch_a", "ch_b", "ch_c"):
        action = decide(token, refund(10, charges=(charge,), before={"refunded": 0}))
        data = ResultInput(outcome="succeeded", after={"refunded": 10})
        action_report_result(token=token, action_id=action.pk, data=data)

    url = f"{live_url}/agents/{agent.slug}/rewind/?since=3m&until=&release=&session=&resource=*"
    page.goto(url)
    log_in(page, owner.username)
    other_tab = page.context.new_page()
    other_tab.goto(url)
    plan = page.locator("#rewind-plan")
    expect(plan).to_contain_text("3 actions in the window: 3 to undo")
    window = plan.locator("#plan-window")
    expect(window).to_contain_text("The window: from")
    since = window.locator("time").first.get_attribute("datetime")
    until = window.locator("time").last.get_attribute("datetime")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "rewind-plan-window.png", full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    plan.get_by_role("button", name="Start the rewind").click()
    progress = page.locator("#rewind-progress")
    expect(progress).to_be_visible()
    rewind = Rewind.objects.get()
    assert (rewind.since.isoformat(), rewind.until.isoformat()) == (since, until)
    other_tab.once("dialog", lambda dialog: dialog.accept())
    other_tab.get_by_role("button", name="Start the rewind").click()
    expect(other_tab.locator(".messages")).to_contain_text(
        f"over an overlapping window is running (rewind {rewind.pk}"
    )
    assert other_tab.url == page.url and Rewind.objects.count() == 1
    other_tab.screenshot(path=SHOTS / "rewind-started-again.png", full_page=True)
    other_tab.close()
    for _ in range(3):
        rewind_step(rewind_id=rewind.pk)
    expect(progress.locator("h2")).to_have_text("Done: nothing undone", timeout=15_000)
    expect(progress.locator("#rewind-shortfall")).to_have_text(
        "Of 3 actions to undo, none was undone: 3 undos denied."
    )
    page.screenshot(path=SHOTS / "rewind-denied.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.reload()
    expect(progress.locator("h2")).to_have_text("Done: nothing undone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=SHOTS / "rewind-denied-phone.png", full_page=True)
    page.goto(f"{live_url}/agents/{agent.slug}/rewind/?since=10m&resource=*")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=SHOTS / "rewind-plan-window-phone.png", full_page=True)
    assert Rewind.objects.count() == 1
