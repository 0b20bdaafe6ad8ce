"""A team's review periods in Chromium: an admin changes them from the team's page (a bad
combination is refused with the reason, nothing saved); a member sees them read-only."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.accounts.models import Team
from oversight.audit.models import AuditEvent
from tests.browser.test_registry_flow import log_in
from tests.browser.test_review_flow import shot

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PAUSE = "Pause the agent once its re-certification is overdue by"


def test_an_admin_changes_the_review_periods_and_a_member_reads_them(
    page: Page, live_url: str, admin_user: Any, owner: Any, team: Team
) -> None:
    page.goto(f"{live_url}/teams/{team.slug}/")
    log_in(page, "ada")
    page.get_by_role("link", name="Re-certification periods").click()
    expect(page).to_have_url(f"{live_url}/teams/{team.slug}/recertification/")
    expect(page.get_by_role("heading", name="Re-certification periods")).to_be_visible()
    expect(page.get_by_label(PAUSE)).to_have_value("30")

    page.get_by_label(PAUSE).fill("3")  # sooner than the admins are told (7 days)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Pause no sooner than the admins are told.")).to_be_visible()
    shot(page, "team-periods-refused")
    assert Team.objects.get(pk=team.pk).review_pause_after_days == 30

    page.get_by_label(PAUSE).fill("45")
    page.get_by_label("Retire an agent idle for").fill("120")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"Re-certification periods of {team.name} saved.")).to_be_visible()
    expect(page.get_by_label(PAUSE)).to_have_value("45")
    shot(page, "team-periods-saved")
    saved = Team.objects.get(pk=team.pk)
    assert (saved.review_pause_after_days, saved.inactivity_retire_days) == (45, 120)
    assert AuditEvent.objects.filter(verb="team.updated", actor_label="ada").count() == 1

    page.context.clear_cookies()
    page.goto(f"{live_url}/teams/{team.slug}/recertification/")
    log_in(page, owner.username)
    expect(page.locator("#setting-review_pause_after_days")).to_have_text("45 days")
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_text("Admins change them.")).to_be_visible()
