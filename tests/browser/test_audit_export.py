"""The audit log's exports as an auditor uses them, in Chromium against the real server:
filter with the Filter button (an htmx swap of the results), then export; the file holds
exactly the rows shown (issue 13: 2 rows shown, 1,048 exported)."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import agent_update
from oversight.audit.models import AuditEvent
from tests.audit.helpers import record
from tests.browser.test_registry_flow import log_in
from tests.conftest import SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SHOTS = Path(tempfile.gettempdir()) / "shots_audit"  # /tmp/shots_audit


def test_an_export_after_filtering_holds_the_rows_shown(
    page: Page, live_url: str, admin_user: Any, agent: Agent, tmp_path: Path
) -> None:
    record(120)  # traffic that is not about the agent
    for purpose in ("Refunds under 50 EUR.", "Refunds under 80 EUR."):
        agent_update(actor=SYSTEM, agent=agent, purpose=purpose)
    wanted = list(
        AuditEvent.objects.filter(agent_id=agent.pk, verb="agent.updated")
        .order_by("-seq")
        .values_list("seq", flat=True)
    )
    assert len(wanted) == 2
    assert AuditEvent.objects.count() > 120

    page.goto(f"{live_url}/audit/")
    log_in(page, "ada")
    results = page.locator("#audit-results")
    expect(results.locator("tbody tr")).to_have_count(50)  # the first page of everything

    filters = page.locator("form.filters")
    filters.get_by_label("Agent").select_option(agent.slug)
    filters.get_by_label("Verb").fill("agent.updated")
    filters.get_by_role("button", name="Filter").click()
    expect(results.locator("tbody tr")).to_have_count(2)
    shown = [int(seq) for seq in results.locator("tbody tr td:first-child").all_inner_texts()]
    assert shown == wanted
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "export-after-filter.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    saved = tmp_path / "audit.csv"
    download.value.save_as(saved)
    with saved.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["seq"]) for row in rows] == shown

    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSONL").click()
    saved = tmp_path / "audit.jsonl"
    download.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["seq"] for line in lines] == shown

    # Clearing the filters brings the whole-log links back.
    page.get_by_role("link", name="Clear").click()
    expect(results.locator("tbody tr")).to_have_count(50)
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute(
        "href", "/audit/export.csv"
    )
