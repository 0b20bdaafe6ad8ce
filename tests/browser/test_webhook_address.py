"""A team owner types a webhook URL that leads inside the network (a cloud's metadata
service) on the team's notification settings, in Chromium: refused with the reason,
nothing saved; a public address is saved. At a desktop's width and a phone's."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.accounts.models import Team
from oversight.notifications.models import TeamChannels
from tests.browser.test_registry_flow import log_in
from tests.browser.test_review_flow import shot
from tests.browser.ui import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

METADATA = "https://169.254.169.254/latest/meta-data/"


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_an_internal_webhook_address_is_refused_with_the_reason(
    page: Page, live_url: str, owner: Any, team: Team, viewport: Any
) -> None:
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_url}/teams/{team.slug}/notifications/")
    log_in(page, owner.username)
    page.get_by_label("Webhook URL", exact=True).fill(METADATA)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Webhook URLs may not lead to an internal address")).to_be_visible()
    shot(page, f"webhook-internal-refused-{'phone' if viewport else 'desktop'}")
    assert not TeamChannels.objects.filter(team=team, webhook_url=METADATA).exists()

    page.get_by_label("Webhook URL", exact=True).fill("https://93.184.216.34/hooks/oversight")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Webhook URLs may not lead")).to_have_count(0)
    saved = TeamChannels.objects.get(team=team)
    assert saved.webhook_url == "https://93.184.216.34/hooks/oversight"
