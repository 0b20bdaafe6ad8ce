"""The alert pages in Chromium against the real ASGI server: find the alert, read its
evidence, follow an action, acknowledge and resolve in place; a viewer cannot act."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import Page, expect

from oversight.gateway.constants import ActionStatus
from oversight.monitoring.jobs import monitoring_run
from oversight.monitoring.models import Alert
from oversight.monitoring.services import (
    Finding,
    alert_acknowledge,
    alert_raise,
    alert_resolve,
    alert_resolve_cleared,
)
from tests.browser.ui import RECORD_SOCKET_OPEN
from tests.monitoring.helpers import actions_at

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SHOTS = Path(tempfile.gettempdir()) / "shots_b"  # /tmp/shots_b


def log_in(page: Page, live_url: str, username: str) -> None:
    page.goto(f"{live_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Alerts", exact=True)).to_be_visible()


def open_live(page: Page, url: str) -> None:
    """Open a live page and wait for its socket: from then on no change is missed."""
    page.add_init_script(RECORD_SOCKET_OPEN)
    page.goto(url)
    page.wait_for_function("window.__socketOpen === true")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def alerts(agent: Any, other_agent: Any, teammate: Any) -> tuple[Alert, Alert]:
    now = timezone.now()
    # 330 actions (critical volume for a new agent), more than half denied (critical too).
    actions_at(agent, now - dt.timedelta(seconds=20), 160)
    actions_at(agent, now - dt.timedelta(seconds=10), 170, decision=ActionStatus.DENIED)
    actions_at(other_agent, now - dt.timedelta(seconds=10), 200)
    monitoring_run(now=now)
    volume = Alert.objects.get(agent=agent, kind="volume")
    return volume, Alert.objects.get(agent=agent, kind="denial_rate")


def test_the_owner_reads_and_resolves_alerts(page: Page, live_url: str, alerts: Any) -> None:
    volume, denials = alerts
    log_in(page, live_url, "alice")
    page.get_by_role("link", name="Alerts", exact=True).click()
    rows = page.locator("#alert-table tbody tr")
    expect(rows).to_have_count(2)  # not the email campaigner's
    shot(page, "1-alert-list")

    page.get_by_label("Status").select_option("resolved")
    expect(page.locator("#alert-table")).to_contain_text("No alerts match")
    page.get_by_label("Status").select_option("unresolved")
    expect(rows).to_have_count(2)

    page.get_by_role("link", name=volume.title).click()
    expect(page.locator("h1")).to_contain_text(volume.title)
    expect(page.locator("#alert-status")).to_contain_text("Every action of Refund bot is held")
    expect(page.locator("#evidence-actions tbody tr")).to_have_count(50)
    shot(page, "2-alert-detail")

    page.locator("#evidence-actions tbody tr a").first.click()
    expect(page).to_have_url(f"{live_url}/actions/{volume.evidence['actions'][0]['id']}/")
    page.go_back()

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("[data-alert-status]")).to_have_text("Acknowledged")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("[data-alert-status]")).to_have_text("Resolved")
    # The denial spike is critical too, so the hold stays until it is resolved as well.
    expect(page.locator("#alert-status")).to_contain_text("is held")
    shot(page, "3-alert-resolved")

    page.goto(f"{live_url}/alerts/{denials.pk}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("[data-alert-status]")).to_have_text("Resolved")
    expect(page.locator("#alert-status")).not_to_contain_text("is held")
    shot(page, "4-hold-lifted")
    volume.agent.refresh_from_db()
    assert not volume.agent.hold_all


def test_a_viewer_reads_but_cannot_act(page: Page, live_url: str, alerts: Any) -> None:
    volume, _denials = alerts
    log_in(page, live_url, "carol")
    page.goto(f"{live_url}/alerts/{volume.pk}/")
    expect(page.locator("#alert-status")).to_contain_text("owner, its reviewers and admins")
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
    shot(page, "5-viewer")


def test_the_alert_list_follows_alerts_as_they_open_and_close(
    page: Page, live_url: str, alerts: Any, owner: Any, other_agent: Any
) -> None:
    volume, denials = alerts
    log_in(page, live_url, "alice")
    open_live(page, f"{live_url}/alerts/?status=unresolved")
    rows = page.locator("#alert-table tbody tr")
    expect(rows).to_have_count(2)
    page.evaluate("window.sameDocument = true")  # gone if the page were loaded again

    alert_resolve(user=owner, alert_id=denials.pk, now=timezone.now())
    expect(rows).to_have_count(1)
    expect(page.locator("#alert-table")).not_to_contain_text(denials.title)

    finding = Finding(
        agent_id=volume.agent_id,
        kind="new_resource",
        severity="warning",
        dedupe_key="live-test",
        title="Refund bot touched a new kind of resource",
        numbers={"family": "s3:bucket"},
    )
    with transaction.atomic():
        alert_raise(finding=finding, now=timezone.now())
    expect(rows).to_have_count(2)
    expect(page.locator("#alert-table")).to_contain_text(finding.title)
    # Someone else's agent: nothing this user may see, so nothing changes.
    other = Finding(**{**finding.__dict__, "agent_id": other_agent.pk, "title": "Not Alice's"})
    with transaction.atomic():
        alert_raise(finding=other, now=timezone.now())
    page.wait_for_timeout(1000)
    expect(rows).to_have_count(2)
    assert page.evaluate("window.sameDocument") is True
    shot(page, "6-live-list")


def test_an_alerts_page_follows_its_status(
    page: Page, live_url: str, alerts: Any, owner: Any
) -> None:
    _volume, denials = alerts
    log_in(page, live_url, "carol")  # a viewer: sees the alert, cannot act on it
    open_live(page, f"{live_url}/alerts/{denials.pk}/")
    status = page.locator("[data-alert-status]")
    expect(status).to_have_text("Open")
    page.evaluate("window.sameDocument = true")

    alert_acknowledge(user=owner, alert_id=denials.pk, now=timezone.now())
    expect(status).to_have_text("Acknowledged")
    alert_resolve(user=owner, alert_id=denials.pk, now=timezone.now())
    expect(status).to_have_text("Resolved")
    assert page.evaluate("window.sameDocument") is True


def test_an_alert_page_says_who_resolved_it_or_what_cleared(
    page: Page, live_url: str, alerts: Any, django_user_model: Any
) -> None:
    """Monitoring's own resolution says what cleared; one by a person whose account was
    deleted since says so, not "by monitoring"."""
    volume, denials = alerts
    alert_resolve_cleared(
        alert_id=volume.pk, now=timezone.now(), why="every action it listed has been settled"
    )
    leaver = django_user_model.objects.create_superuser("leaver", "leaver@example.com", "x")
    alert_resolve(user=leaver, alert_id=denials.pk, now=timezone.now())
    leaver.delete()
    log_in(page, live_url, "alice")
    page.goto(f"{live_url}/alerts/{volume.pk}/")
    expect(page.locator("#alert-status")).to_contain_text(
        "by monitoring, its condition cleared (every action it listed has been settled)"
    )
    shot(page, "7-resolved-by-monitoring")
    page.goto(f"{live_url}/alerts/{denials.pk}/")
    status = page.locator("#alert-status")
    expect(status).to_contain_text("by a person whose account has since been deleted")
    expect(status).not_to_contain_text("by monitoring")
    shot(page, "8-resolved-by-someone-deleted")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    expect(status).to_contain_text("by a person whose account has since been deleted")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "8-resolved-by-someone-deleted-phone")
