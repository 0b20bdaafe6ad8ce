"""/favicon.ico, which browsers ask for whatever a page links."""

from __future__ import annotations

from django.templatetags.static import static
from django.test import Client


def test_favicon_ico_leads_anyone_to_the_sites_icon(client: Client) -> None:
    """It was a 404 in every browser's log."""
    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (301, static("favicon.svg"))
