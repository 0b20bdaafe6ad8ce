"""Every page's footer leads to the agent API's reference and its OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.ui import log_in

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_footer_links_to_the_api_reference_and_the_openapi_document(
    page: Page, live_url: str, owner: Any
) -> None:
    log_in(page, live_url, owner.username, "/agents/")
    footer = page.get_by_role("contentinfo")

    footer.get_by_role("link", name="API reference").click()
    expect(page).to_have_url(f"{live_url}/api/v1/docs")
    # Swagger UI, served with the app's static files, renders the document it loaded.
    expect(page.get_by_role("heading", name="Oversight agent API")).to_be_visible()
    expect(page.get_by_text("/api/v1/actions").first).to_be_visible()

    page.go_back()
    footer.get_by_role("link", name="OpenAPI document").click()
    expect(page).to_have_url(f"{live_url}/api/v1/openapi.json")
    document = json.loads(page.locator("body").inner_text())
    assert document["info"]["title"] == "Oversight agent API"
    assert "/api/v1/actions" in document["paths"]
    assert "/api/v1/approvals/{action_id}/vote" in document["paths"]
