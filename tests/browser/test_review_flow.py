"""A review as an owner lives it, in Chromium against the real ASGI server: the overdue
agent in the list, its grants with their use, an unused grant removed in one click, and
the agent re-certified with its access reduced."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.audit.models import AuditEvent
from oversight.policy.models import Grant
from oversight.reviews.models import Review
from tests.browser.test_registry_flow import log_in
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, refund
from tests.reviews.helpers import grant

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SHOTS = Path(tempfile.gettempdir()) / "shots_a"  # /tmp/shots_a


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_owner_removes_an_unused_grant_and_recertifies(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    refunds = grant_refunds(agent)
    voids = grant(agent, "payments.void", "stripe:charge/*", age_days=120)  # granted long ago
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="staging")
    for _ in range(3):
        decide(token, refund(100))  # real decisions, each citing the refunds grant
    overdue_since = timezone.localdate() - dt.timedelta(days=3)
    Agent.objects.filter(pk=agent.pk).update(next_review_due=overdue_since)

    page.goto(f"{live_url}/recertification/")
    log_in(page, "alice")
    expect(page.get_by_role("heading", name="Re-certification")).to_be_visible()
    expect(page.get_by_text("1 overdue")).to_be_visible()
    shot(page, "1-review-list")
    page.get_by_role("link", name="Re-certify", exact=True).click()

    expect(page).to_have_url(f"{live_url}/recertification/refund-bot/")
    expect(page.get_by_role("heading", name="Re-certification of Refund bot")).to_be_visible()
    used_row = page.locator(f"#grant-{refunds.pk}")
    unused_row = page.locator(f"#grant-{voids.pk}")
    expect(used_row).to_contain_text("payments.refund")
    expect(used_row.locator("td.right").nth(0)).to_have_text("3")
    expect(unused_row).to_contain_text("unused")
    expect(used_row).not_to_contain_text("unused")
    shot(page, "2-review-page")

    page.once("dialog", lambda dialog: dialog.accept())
    unused_row.get_by_role("button", name="Remove payments.void on stripe:charge/*").click()
    expect(
        page.get_by_role("status").filter(has_text="Removed in this re-certification")
    ).to_be_visible()
    expect(page.locator(f"#grant-{voids.pk}")).to_have_count(0)
    expect(used_row).to_be_visible()
    assert list(Grant.objects.filter(agent=agent)) == [refunds]
    shot(page, "3-grant-removed")

    page.get_by_label("The purpose above is still right").check()
    page.get_by_label("Notes").fill("Voids are done by people now.")
    page.get_by_role("button", name="Re-certify for 90 days").click()

    done = "Refund bot re-certified (access reduced first)"
    expect(page.get_by_text(done)).to_be_visible()
    history = page.locator("#review-history")
    expect(history).to_contain_text("Access reduced, then re-certified")
    expect(history).to_contain_text("payments.void on stripe:charge/*")
    expect(history).to_contain_text("Voids are done by people now.")
    shot(page, "4-recertified")

    review = Review.objects.get()
    assert (review.outcome, review.reviewed_by_id) == ("reduced", owner.pk)
    reviewed = Agent.objects.get(pk=agent.pk)
    assert reviewed.next_review_due == timezone.localdate() + dt.timedelta(days=90)
    assert AuditEvent.objects.filter(verb="grant.deleted", agent_id=agent.pk).count() == 1
    assert AuditEvent.objects.filter(verb="review.completed", agent_id=agent.pk).count() == 1


def test_an_owner_retires_an_agent_from_its_page_and_it_becomes_read_only(
    page: Page, live_url: str, owner: Any, agent: Agent
) -> None:
    refunds = grant_refunds(agent)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="staging")

    page.goto(f"{live_url}/agents/refund-bot/")
    log_in(page, "alice")
    expect(page.get_by_role("heading", name="Refund bot")).to_be_visible()
    page.locator("#retire-control summary").click()
    retire = page.get_by_role("button", name="Retire Refund bot")
    expect(retire).to_be_visible()
    shot(page, "5-retire-confirm")
    retire.click()  # the browser refuses: no reason, no confirmation
    expect(page).to_have_url(f"{live_url}/agents/refund-bot/")
    page.get_by_label("Why retire it?").fill("Replaced by the refunds service.")
    page.get_by_label("I understand: this cannot be undone.").check()
    retire.click()

    expect(page.get_by_text("Refund bot is retired: tokens revoked")).to_be_visible()
    expect(page.locator("h1 .pill")).to_have_text("Retired")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.locator("#agent-tokens")).to_have_count(0)
    shot(page, "6-retired")
    token.refresh_from_db()
    refunds.refresh_from_db()
    assert token.revoked_at is not None and refunds.expires_at is not None

    page.goto(f"{live_url}/agents/refund-bot/edit/")
    expect(page.get_by_text("Refund bot is retired: it is kept read-only")).to_be_visible()
    expect(page.get_by_text("can grant access")).to_have_count(0)  # no access would help
    shot(page, "7-edit-refused")
    page.goto(f"{live_url}/recertification/refund-bot/")
    expect(page.get_by_text("read-only, kept with its history")).to_be_visible()
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)
