"""Renamed areas keep their former addresses working: re-certification was "reviews"
(easily taken for the reviewer's approvals), the alerts lived under "monitoring"."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_nav_links_and_the_pages_agree(client: Client, owner: Any, agent: Any) -> None:
    client.force_login(owner)
    page = client.get(reverse("home")).content.decode()
    assert '<a href="/recertification/" >Re-certification</a>' in page
    assert '<a href="/alerts/" >Alerts</a>' in page
    assert ">Reviews<" not in page
    assert "<h1>Alerts</h1>" in client.get("/alerts/").content.decode()
    assert "<h1>Re-certification</h1>" in client.get("/recertification/").content.decode()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/reviews/", "/recertification/"),
        ("/reviews/refund-bot/", "/recertification/refund-bot/"),
        ("/teams/payments/reviews/", "/teams/payments/recertification/"),
        ("/monitoring/?status=open", "/alerts/?status=open"),
        ("/monitoring/alerts/7/", "/alerts/7/"),
    ],
)
def test_former_addresses_move_on_for_good(
    client: Client, owner: Any, agent: Any, old: str, new: str
) -> None:
    client.force_login(owner)
    response = client.get(old)
    assert (response.status_code, response["Location"]) == (301, new)
