"""The agent registry as people use it: in Chromium, against the real ASGI server."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import agent_create
from oversight.audit.models import AuditEvent
from tests.conftest import SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw"  # every user from tests/conftest.py's make_user
SHOTS = Path(tempfile.gettempdir()) / "oversight-shots"  # /tmp/oversight-shots


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Fill in the login form the site has just redirected to, and submit it."""
    expect(page.get_by_role("heading", name="Log in to Oversight")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def go_back_and_wait_for_the_page(page: Page) -> None:
    """Press Back and wait for the reload: htmx keeps no history snapshots here
    (historyCacheSize 0) and reloads from the server, so filters and table always agree."""
    with page.expect_event("load"):
        page.go_back()


def test_an_owner_registers_an_agent_edits_it_and_sees_the_change_in_its_history(
    page: Page, live_url: str, owner: Any, team: Any
) -> None:
    page.goto(live_url)
    expect(page).to_have_url(f"{live_url}/login/?next=/")
    log_in(page, "alice")

    expect(page).to_have_url(f"{live_url}/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("link", name="Agents", exact=True).click()
    expect(page.get_by_text("0 agents")).to_be_visible()
    page.get_by_role("link", name="Register agent").click()

    expect(page.get_by_role("heading", name="Register an agent")).to_be_visible()
    page.get_by_label("Name").fill("Ledger reconciler")
    page.get_by_label("Purpose").fill("Matches payouts against the ledger every night.")
    page.get_by_label("Staging", exact=True).check()
    page.get_by_label("Production", exact=True).check()
    page.get_by_label("Team").select_option(label="payments")
    page.get_by_role("button", name="Register agent").click()

    expect(page).to_have_url(f"{live_url}/agents/ledger-reconciler/")
    expect(page.get_by_text("Registered Ledger reconciler.")).to_be_visible()
    expect(page.get_by_role("heading", name="Ledger reconciler")).to_be_visible()
    agent = Agent.objects.select_related("owner", "team").get(slug="ledger-reconciler")
    assert (agent.owner, agent.team, agent.risk_tier) == (owner, team, "medium")
    assert sorted(agent.environments) == ["production", "staging"]

    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit Ledger reconciler")).to_be_visible()
    purpose = page.get_by_label("Purpose")
    expect(purpose).to_have_value("Matches payouts against the ledger every night.")
    purpose.fill("Matches payouts against the ledger and flags gaps to finance.")
    page.get_by_label("Risk tier").select_option("high")
    page.get_by_role("button", name="Save changes").click()

    expect(page).to_have_url(f"{live_url}/agents/ledger-reconciler/")
    expect(page.get_by_text("Saved Ledger reconciler.")).to_be_visible()
    expect(page.locator(".purpose")).to_have_text(
        "Matches payouts against the ledger and flags gaps to finance."
    )
    entries = page.locator(".history-entry")
    # newest first: the edit, then the registration and its release 1 (made, promoted)
    expect(entries).to_have_count(4)
    latest = entries.first
    expect(latest.locator(".verb")).to_have_text("agent.updated")
    expect(latest.locator(".history-head strong")).to_have_text("alice")
    purpose_row = latest.locator("table.diff tr", has=page.locator("th", has_text="Purpose"))
    expect(purpose_row.locator(".old")).to_have_text(
        "Matches payouts against the ledger every night."
    )
    expect(purpose_row.locator(".new")).to_have_text(
        "Matches payouts against the ledger and flags gaps to finance."
    )
    risk_row = latest.locator("table.diff tr", has=page.locator("th", has_text="Risk tier"))
    expect(risk_row.locator(".old")).to_have_text("medium")
    expect(risk_row.locator(".new")).to_have_text("high")
    expect(latest.locator("table.diff tr")).to_have_count(2)  # nothing else changed
    expect(entries.nth(3).locator(".verb")).to_have_text("agent.created")
    assert list(AuditEvent.objects.order_by("-seq").values_list("verb", "actor_label")[:4]) == [
        ("agent.updated", "alice"),
        ("release.promoted", "alice"),
        ("release.created", "alice"),
        ("agent.created", "alice"),
    ]

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "detail.png", full_page=True)


def test_the_list_filters_update_the_table_in_place(
    page: Page, live_url: str, owner: Any, team: Any, agent: Any
) -> None:
    agent_create(
        actor=SYSTEM,
        name="Invoice chaser",
        purpose="Reminds customers about unpaid invoices.",
        owner=owner,
        team=team,
    )
    page.goto(f"{live_url}/agents/")
    log_in(page, "alice")
    expect(page).to_have_url(f"{live_url}/agents/")
    rows = page.locator("#agent-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#agent-table .count")).to_have_text("2 agents")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "list.png", full_page=True)

    page.evaluate("window.__marker = 1")  # a full page load would wipe this out
    history_length = page.evaluate("history.length")
    with page.expect_request(lambda r: query(r.url).get("q") == ["refund"]) as request:
        page.get_by_role("searchbox", name="Search").press_sequentially("refund")
    assert request.value.headers.get("hx-request") == "true"
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Refund bot")
    expect(page.locator("#agent-table .count")).to_have_text("1 agent")
    expect(page).to_have_url(re.compile(r"/agents/\?q=refund(&|$)"))
    assert page.evaluate("history.length") == history_length + 1  # pushed, not replaced
    assert page.evaluate("window.__marker") == 1

    # The status select filters the same way: nothing here is paused.
    page.get_by_role("combobox").filter(has_text="Any status").select_option("paused")
    expect(page.get_by_text("No agents match these filters.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/agents/\?q=refund&.*status=paused"))
    assert page.evaluate("window.__marker") == 1

    # Back goes to the previous filter state. It is loaded from the server (htmx keeps no
    # snapshots), so the search box and the table cannot disagree.
    go_back_and_wait_for_the_page(page)
    expect(page).to_have_url(re.compile(r"/agents/\?q=refund(&|$)"))
    expect(rows).to_have_count(1)
    expect(page.get_by_role("searchbox", name="Search")).to_have_value("refund")


def test_a_teammate_sees_the_agent_but_may_not_edit_it(
    page: Page, live_url: str, agent: Any, teammate: Any
) -> None:
    page.goto(f"{live_url}/agents/")
    log_in(page, "carol")
    expect(page).to_have_url(f"{live_url}/agents/")
    expect(page.get_by_role("link", name="Register agent")).to_have_count(0)  # no owner role
    page.get_by_role("link", name="Refund bot").click()

    expect(page).to_have_url(f"{live_url}/agents/refund-bot/")
    expect(page.get_by_role("heading", name="Refund bot")).to_be_visible()
    expect(page.locator(".purpose")).to_have_text("Issues refunds for support tickets.")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)

    response = page.goto(f"{live_url}/agents/refund-bot/edit/")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", name="You can't do that here")).to_be_visible()
    expect(page.get_by_role("link", name="Agents", exact=True)).to_be_visible()  # site nav
    expect(page.get_by_label("Purpose")).to_have_count(0)


# Browser history: Back always shows filters and table in agreement.


def test_after_back_the_search_box_shows_the_filter_the_table_shows(
    page: Page, live_url: str, owner: Any, agent: Any
) -> None:
    page.goto(f"{live_url}/agents/")
    log_in(page, "alice")
    search = page.get_by_role("searchbox", name="Search")
    search.fill("refund")
    expect(page).to_have_url(re.compile(r"\?q=refund&"))
    page.get_by_role("combobox").filter(has_text="Any status").select_option("paused")
    expect(page).to_have_url(re.compile(r"status=paused"))

    go_back_and_wait_for_the_page(page)
    expect(page).to_have_url(re.compile(r"\?q=refund&.*status=$"))
    expect(page.locator("#agent-table tbody tr")).to_have_count(1)
    expect(search).to_have_value("refund", timeout=1_000)  # the page has settled by now


def test_going_back_further_than_htmx_remembers_shows_the_whole_page(
    page: Page, live_url: str, owner: Any, agent: Any
) -> None:
    page.goto(f"{live_url}/agents/")
    log_in(page, "alice")
    search = page.get_by_role("searchbox", name="Search")
    searches = 11  # one more than htmx's default historyCacheSize (10)
    for n in range(searches):
        search.fill(f"search{n}")
        expect(page).to_have_url(re.compile(rf"\?q=search{n}&"))
    for _ in range(searches):
        go_back_and_wait_for_the_page(page)

    expect(page).to_have_url(f"{live_url}/agents/")
    expect(page.locator("#agent-table tbody tr")).to_have_count(1)
    expect(page.get_by_role("heading", name="Agents")).to_be_visible(timeout=1_000)
    expect(search).to_be_visible(timeout=1_000)
