"""A reviewer makes a personal API token in the browser (shown once), her tool decides a
held action with it, and revoking it stops the tool at once."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from oversight.accounts.models import PersonalToken
from oversight.audit.models import AuditEvent
from tests.browser.a11y import unnamed_controls
from tests.browser.test_approvals_flow import Scene, refund_in_thread, scene  # noqa: F401
from tests.browser.ui import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_personal_token_is_made_used_and_revoked(
    page: Page,
    live_url: str,
    scene: Scene,  # noqa: F811
) -> None:
    refund = refund_in_thread(live_url, scene.raw_token)
    log_in(page, live_url, "rita", "/approvals/")
    page.get_by_role("link", name="rita").click()
    expect(page.get_by_role("heading", name="Your API tokens")).to_be_visible()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()

    page.get_by_label("Name").fill("approvals bot")
    page.get_by_role("button", name="New token").click()
    raw = page.locator("#new-token").inner_text().strip()
    assert raw.startswith("ovp_")
    expect(page.locator("#personal-tokens table")).to_contain_text("approvals bot")
    assert unnamed_controls(page) == []
    shot(page, "personal-tokens")
    token = PersonalToken.objects.get(user=scene.rita)
    assert token.token_hash != raw and raw.startswith(token.prefix)
    assert AuditEvent.objects.filter(verb="personal_token.created").count() == 1

    api = httpx.Client(base_url=f"{live_url}/api/v1", headers={"Authorization": f"Bearer {raw}"})
    [held] = api.get("/approvals").json()
    answer = api.post(f"/approvals/{held['id']}/vote", json={"vote": "deny", "comment": "via cli"})
    assert answer.status_code == 200 and answer.json()["status"] == "rejected"
    assert refund.join()["error"].comment == "via cli"

    page.reload()
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name=f"Revoke {token.prefix}").click()
    expect(page.locator("#personal-tokens")).to_contain_text("active")  # asked first
    assert asked and asked[0].startswith(f"Revoke {token.prefix}")
    assert api.get("/approvals").status_code == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke {token.prefix}").click()
    expect(page.locator("#personal-tokens")).to_contain_text("revoked")
    assert api.get("/approvals").status_code == 401
    assert AuditEvent.objects.filter(verb="personal_token.revoked").count() == 1
