"""The reviewer's answer reaches the agent: approve-with-edit changes what the agent runs,
and a deny's comment reaches the SDK. A real agent (the SDK in a background thread)
waits on a held refund while a reviewer decides in Chromium."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.live import groups
from oversight_sdk import ActionRejected, Oversight
from tests.browser.a11y import unnamed_controls
from tests.browser.test_approvals_flow import (  # noqa: F401 (fixtures)
    SDK_WAIT,
    Scene,
    open_as,
    refund_in_thread,
    scene,
    screenshot,
    the_held_item,
)
from tests.gateway.helpers import REFUND
from tests.servers import wait_until_the_server_listens

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def refund_function_in_thread(
    url: str, raw_token: str, amount: int, *, charge_in_params: bool = False
) -> dict[str, Any]:
    """A decorated refund function, as an agent writes it: the amount is its argument
    (and the charge, with `charge_in_params`, a param too)."""
    ended: dict[str, Any] = {}

    def params(charge: str, amount: int) -> dict[str, Any]:
        return {"charge": charge, "amount": amount} if charge_in_params else {"amount": amount}

    def run() -> None:
        with Oversight(url, raw_token) as client:

            @client.guard(
                REFUND,
                resource=lambda charge: f"stripe:charge/{charge}",
                params=params,
                timeout=SDK_WAIT,
            )
            def refund(charge: str, amount: int) -> dict[str, Any]:
                ended["ran_with"] = amount
                return {"refunded": amount}

            try:
                ended["returned"] = refund("ch_1", amount)
            except Exception as exc:
                ended["error"] = exc

    ended["thread"] = threading.Thread(target=run, daemon=True)
    ended["thread"].start()
    return ended


def test_approve_with_edit_changes_what_the_agent_runs(
    open_as: Callable[[str, str], Page],  # noqa: F811
    live_url: str,
    scene: Scene,  # noqa: F811
) -> None:
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
    agent = refund_function_in_thread(live_url, scene.raw_token, 900)
    item, action_id = the_held_item(rita)

    item.get_by_text("Edit and approve").click()
    params = item.get_by_label("Params to approve")
    expect(params).to_have_value('{\n  "amount": 900\n}')
    # A changed type is refused with a clear message; nothing changes, the editor stays.
    params.fill('{"amount": "four hundred"}')
    item.get_by_role("button", name="Approve with these params").click()
    expect(item.get_by_role("alert")).to_contain_text("params.amount must stay a number")
    assert Action.objects.get(pk=action_id).status == "pending"
    assert agent["thread"].is_alive()
    screenshot(rita, "edit-and-approve-refused.png")
    assert unnamed_controls(rita) == []

    item.get_by_label("Params to approve").fill('{"amount": 400}')
    item.get_by_label("Note to the agent").fill("400 is what is left to refund")
    screenshot(rita, "edit-and-approve.png")
    item.get_by_role("button", name="Approve with these params").click()

    agent["thread"].join(timeout=SDK_WAIT + 5)
    assert agent.get("error") is None, agent.get("error")
    assert (agent["ran_with"], agent["returned"]) == (400, {"refunded": 400})
    action = Action.objects.get(pk=action_id)
    assert (action.status, action.params, action.requested_params) == (
        "succeeded",
        {"amount": 400},
        {"amount": 900},
    )
    voted = AuditEvent.objects.get(verb="action.voted", target_id=action_id)
    assert (voted.before["params"], voted.after["params"]) == ({"amount": 900}, {"amount": 400})

    # The action's page shows both, and the story says what was edited.
    rita.goto(f"{live_url}/actions/{action_id}/")
    expect(rita.get_by_role("heading", name="Params as asked")).to_be_visible()
    expect(rita.get_by_role("heading", name="Params as approved (edited)")).to_be_visible()
    # The edited params decided again: 400 is allowed by the grant alone.
    edited_reasons = rita.get_by_role("heading", name="Reasons for the edited params")
    expect(edited_reasons).to_be_visible()
    expect(rita.locator("ul.reasons").nth(1)).to_contain_text("allow")
    expect(rita.locator(".history")).to_contain_text("Approved with edited params")
    expect(rita.locator(".votes")).to_contain_text("with edited params: “400 is what is left")
    screenshot(rita, "edited-action-page.png")


def test_a_deny_s_comment_reaches_the_sdk(
    open_as: Callable[[str, str], Page],  # noqa: F811
    live_url: str,
    scene: Scene,  # noqa: F811
) -> None:
    scene.rita.first_name, scene.rita.last_name = "Rita", "Reviewer"
    scene.rita.save()
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
    refund = refund_in_thread(live_url, scene.raw_token)
    item, _action_id = the_held_item(rita)

    item.get_by_label("Comment", exact=True).fill("Already refunded by hand in ticket T-88.")
    item.get_by_role("button", name="Deny", exact=True).click()

    ended = refund.join()
    exc = ended["error"]
    assert isinstance(exc, ActionRejected) and "ran" not in ended
    assert exc.comment == "Already refunded by hand in ticket T-88."
    assert exc.decided_by == "Rita Reviewer"
    assert [(v.username, v.vote) for v in exc.votes] == [("rita", "deny")]


def test_the_edit_form_fits_a_phone(
    browser: Any,
    live_url: str,
    scene: Scene,  # noqa: F811
) -> None:
    from tests.browser.test_approvals_flow import log_in

    refund = refund_in_thread(live_url, scene.raw_token)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{live_url}/approvals/")
        log_in(page, "rita")
        item, _ = the_held_item(page)
        item.get_by_text("Edit and approve").click()
        expect(item.get_by_label("Params to approve")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, "edit-and-approve-390.png")
        item.get_by_label("Comment", exact=True).fill("not now")
        item.get_by_role("button", name="Deny", exact=True).click()
        refund.join()
    finally:
        context.close()


def test_the_param_a_resource_is_made_of_is_not_editable(
    open_as: Callable[[str, str], Page],  # noqa: F811
    live_url: str,
    scene: Scene,  # noqa: F811
) -> None:
    """The decorated function's resource is made of `charge`, so the SDK says so and an
    edit of it is refused (it would refund another charge on a decision about ch_1); the
    form says which params stay, and the amount may still be edited."""
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
    agent = refund_function_in_thread(live_url, scene.raw_token, 900, charge_in_params=True)
    item, action_id = the_held_item(rita)

    item.get_by_text("Edit and approve").click()
    expect(item.locator("label", has_text="Params to approve")).to_contain_text(
        "not charge: the resource is made of it"
    )
    item.get_by_label("Params to approve").fill('{"charge": "ch_2", "amount": 900}')
    item.get_by_role("button", name="Approve with these params").click()
    expect(item.get_by_role("alert")).to_contain_text(
        "The resource stripe:charge/ch_1 is made of params.charge, which cannot be edited"
    )
    assert Action.objects.get(pk=action_id).status == "pending"
    screenshot(rita, "edit-of-the-resource-refused.png")

    item.get_by_label("Params to approve").fill('{"charge": "ch_1", "amount": 400}')
    item.get_by_role("button", name="Approve with these params").click()
    agent["thread"].join(timeout=SDK_WAIT + 5)
    assert agent.get("error") is None, agent.get("error")
    assert agent["ran_with"] == 400
    assert Action.objects.get(pk=action_id).params == {"charge": "ch_1", "amount": 400}
