"""An incident in Chromium, end to end: the owner deletes a rule, refunds of several
charges at once start going through, she stops the agent with the kill switch; the
incident it opened is analysed by a real Celery worker and its page names the deleted
rule first, with the blast radius and a rewind to plan. She takes it, notes it, exports it.

The traffic is decided by the pipeline and placed on a one-minute timeline around the
real change (``tests/incidents/helpers.place``), with one-second buckets, after the
policy's own setup."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.incidents.models import Incident
from oversight.policy.services import policy_object_delete
from tests.browser.test_killswitch_reach import press
from tests.browser.test_registry_flow import SHOTS, log_in
from tests.conftest import SYSTEM
from tests.gateway.helpers import forbid_many_charges, grant_refunds
from tests.incidents.helpers import bulk_refund, mix, place, small_refund, traffic
from tests.servers import celery_worker

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ANALYSIS = {"INCIDENT_BUCKET_SECONDS": "1", "INCIDENT_LOOKBACK_BUCKETS": "60"}


def _sleep_until(moment: dt.datetime) -> None:
    time.sleep(max(0.0, (moment - timezone.now()).total_seconds()))


@pytest.mark.slow
def test_the_kill_switch_opens_an_incident_that_names_the_deleted_rule(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    grant_refunds(agent)
    rule = forbid_many_charges(agent)
    set_up = timezone.now()
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    body = mix((75, small_refund), (25, bulk_refund))
    before = traffic(token, body, 150, seed=11)
    # The policy was set up before any of this traffic: ten seconds of it, one per bucket.
    _sleep_until(set_up + dt.timedelta(seconds=11))
    policy_object_delete(actor=Actor.for_user(owner), obj=rule)
    t0 = AuditEvent.objects.filter(verb="rule.deleted").latest("seq").created_at
    after = traffic(token, body, 60, seed=12)
    place(before, t0 - dt.timedelta(seconds=10), t0)
    place(after, t0, t0 + dt.timedelta(seconds=8))
    _sleep_until(t0 + dt.timedelta(seconds=9))

    with celery_worker(extra_env=ANALYSIS):
        page.goto(f"{live_url}/agents/{agent.slug}/")
        log_in(page, owner.username)
        press(page, "Stop Refund bot", "bulk refunds are going through")
        expect(page.locator("#killswitch-banners")).to_contain_text("bulk refunds")

        page.get_by_role("link", name="Incidents", exact=True).first.click()
        row = page.locator("#incident-table tbody tr").first
        expect(row).to_contain_text("Kill switch engaged for agent Refund bot")
        row.get_by_role("link", name="INC-").click()

        causes = page.locator("#cause-list > li")
        expect(causes.first).to_contain_text("rule deleted: one charge at a time", timeout=30_000)
        expect(causes.first).to_contain_text(f"by {owner.username}")
        expect(causes.first.locator("table")).to_contain_text("payments.refund denied")
        expect(page.locator("#break-point")).to_contain_text("Behaviour changed at")
        incident = Incident.objects.get()
        blast = incident.report["blast_radius"]
        expect(page.locator("#blast-actions")).to_contain_text(str(blast["actions"]))
        expect(page.locator("#blast-effect")).to_contain_text(f"{blast['took_effect']}, on")
        assert blast["actions"] >= 50  # about the 60 after the change, to the bucket
        expect(page.locator("#behaviour-chart svg rect").first).to_be_visible()
        expect(page.locator("#incident-timeline")).to_contain_text("kill switch")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / "incident.png", full_page=True)

    page.locator("#incident-update select[name=status]").select_option("investigating")
    page.locator("#incident-update select[name=owner]").select_option(label=owner.username)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#incident-status")).to_have_text("Investigating")
    expect(page.locator("#incident-owner")).to_have_text(owner.username)
    page.get_by_label("Add a note").fill("The rule was deleted by mistake; restoring it.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#incident-notes")).to_contain_text("deleted by mistake")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export Markdown").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert "## Likely causes" in text and "one charge at a time" in text

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.screenshot(path=SHOTS / "incident-phone.png", full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px ({width} px)"

    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role(
        "link", name="Compare Refund bot's behaviour before and after the break"
    ).click()
    expect(page.locator("h1")).to_contain_text("Behaviour:")
    expect(page.locator("main")).to_contain_text("payments.refund")
    page.go_back()
    page.get_by_role("link", name="Plan a rewind of Refund bot").click()
    expect(page).to_have_url(re.compile(r"/agents/refund-bot/rewind/\?since=2"))
    expect(page.locator("h1")).to_contain_text("Rewind")
