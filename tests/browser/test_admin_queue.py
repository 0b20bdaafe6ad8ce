"""An admin's approval queue: every held action is shown (admins oversee them all), but
one is theirs to decide only once it is escalated to them (or names them). The cards are
one HTML for everyone (live), so each names who may decide it and the page hides its
forms from anyone else, saying whose it is; when it is escalated, the admin's card
offers the forms live."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from oversight.approvals.escalation import action_escalate
from oversight.live import groups
from oversight_sdk import Oversight
from tests.browser.test_approvals_flow import (  # noqa: F401 (fixtures)
    REFUND,
    Scene,
    not_reloaded,
    open_as,
    scene,
    screenshot,
)
from tests.servers import wait_until_the_server_listens

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_admin_sees_every_held_action_but_decides_it_once_escalated(
    open_as: Callable[[str, str], Page],  # noqa: F811
    live_url: str,
    scene: Scene,  # noqa: F811
) -> None:
    ada = open_as("ada", "/approvals/")
    rita = open_as("rita", "/approvals/")
    wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
    with Oversight(live_url, scene.raw_token) as client:
        held = client.ask(REFUND, "stripe:charge/ch_7", params={"amount": 900})
    assert held.status == "pending"

    mine, theirs = rita.locator(f"#queue-{held.id}"), ada.locator(f"#queue-{held.id}")
    expect(mine.get_by_role("button", name="Approve")).to_be_visible()
    expect(mine.locator(".not-yours-note")).to_be_hidden()
    expect(theirs).to_contain_text("payments.refund on stripe:charge/ch_7")
    expect(theirs.get_by_role("button", name="Approve")).to_be_hidden()
    expect(theirs.locator(".not-yours-note")).to_be_visible()
    expect(theirs.locator(".not-yours-note")).to_contain_text("Not yours to decide now")
    screenshot(ada, "admin-queue-not-yours.png")

    assert action_escalate(action_id=held.id, reason="nobody decided in 10 minutes")
    expect(theirs.locator(".pill-escalated")).to_be_visible()
    expect(theirs.get_by_role("button", name="Approve")).to_be_visible()
    expect(theirs.locator(".not-yours-note")).to_be_hidden()
    assert not_reloaded(ada) and not_reloaded(rita)

    # The compact list marks them the same way: the escalated one is hers, a new one not.
    with Oversight(live_url, scene.raw_token) as client:
        later = client.ask(REFUND, "stripe:charge/ch_8", params={"amount": 901})
    ada.goto(f"{live_url}/approvals/?view=list")
    escalated, fresh = ada.locator(f"#queue-{held.id}"), ada.locator(f"#queue-{later.id}")
    expect(
        escalated.get_by_role("button", name="Approve payments.refund on stripe:charge/ch_7")
    ).to_be_visible()
    expect(fresh).to_contain_text("not yours to decide now")
    expect(
        fresh.get_by_role("button", name="Approve payments.refund on stripe:charge/ch_8")
    ).to_be_hidden()
    screenshot(ada, "admin-queue-list.png")


WHOLE = "e => e.scrollWidth <= e.clientWidth + 1 && e.scrollHeight <= e.clientHeight + 1"


def test_a_compact_row_shows_whole_what_its_one_click_approve_approves(
    open_as: Callable[[str, str], Page],  # noqa: F811
    live_url: str,
    scene: Scene,  # noqa: F811
) -> None:
    """On a desktop a row of the compact list is one line while its resource and params
    fit; a row whose do not shows them whole, the params on a line of their own (they
    were cut to one line beside the one-click Approve, the rest hidden), as the page
    opens, as rows arrive live and as the window's width changes."""
    long_note = "customer-47283 was charged twice on the 3rd and the 4th of the month"
    with Oversight(live_url, scene.raw_token) as client:
        short = client.ask(REFUND, "stripe:charge/ch_7", params={"amount": 900})
        long = client.ask(
            REFUND, "stripe:charge/ch_8_vip_47283", params={"amount": 901, "note": long_note}
        )
    rita = open_as("rita", "/approvals/?view=list")
    wait_until_the_server_listens(groups.agent_queue(scene.agent.pk))
    with Oversight(live_url, scene.raw_token) as client:
        arrived = client.ask(
            REFUND, "stripe:charge/ch_9_vip_47283", params={"amount": 902, "note": long_note}
        )
    expect(rita.locator(f"#queue-{arrived.id}")).to_be_visible()

    one_line = rita.locator(f"#queue-{short.id}")
    expect(one_line).not_to_have_class(re.compile("queue-row-whole"))
    assert one_line.bounding_box()["height"] < 60, "a row that fits is one line"
    for action in (long, arrived):
        row = rita.locator(f"#queue-{action.id}")
        expect(row.get_by_role("button", name="Approve")).to_be_visible()
        expect(row).to_have_class(re.compile(r"\bqueue-row-whole\b"))
        for part in (row.locator(".queue-row-params"), row.locator(".queue-row-what")):
            assert part.evaluate(WHOLE), "a resource or param is cut short"
        expect(row.locator(".queue-row-params")).to_contain_text(long_note)
        assert row.bounding_box()["height"] < 110, "a line, and the params' lines"
    screenshot(rita, "reviewer-queue-list-whole.png")

    # The width changed: every row is judged again (here one marked whole as if it had
    # not fitted at the old width goes back to one line).
    one_line.evaluate("row => row.classList.add('queue-row-whole')")
    rita.set_viewport_size({"width": 1300, "height": 800})
    expect(one_line).not_to_have_class(re.compile("queue-row-whole"))
    assert one_line.bounding_box()["height"] < 60
    expect(rita.locator(f"#queue-{long.id}")).to_have_class(re.compile(r"\bqueue-row-whole\b"))
