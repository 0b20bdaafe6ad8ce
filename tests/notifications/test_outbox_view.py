"""/dev/outbox/: the emails sent, readable in the browser in development only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from oversight.notifications.services import notify_action_held
from tests.notifications.conftest import set_channels

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(
    team: Any, held_action: Any, rita: Any, gus: Any, django_capture_on_commit_callbacks: Any
) -> Any:
    set_channels(team, email=True)
    with django_capture_on_commit_callbacks(execute=True):
        notify_action_held(action_id=held_action.pk)
    return held_action


def _get(user: Any) -> Any:
    client = Client()
    client.force_login(user)
    return client.get("/dev/outbox/")


def test_it_is_not_there_without_dev_outbox(settings: Any, sent: Any, admin_user: Any) -> None:
    settings.DEV_OUTBOX = False
    assert _get(admin_user).status_code == 404


def test_the_production_default_is_off() -> None:
    from django.conf import settings

    assert settings.DEV_OUTBOX is False  # tests run on production settings (DEBUG off)


def test_admins_see_every_email_with_its_links(settings: Any, sent: Any, admin_user: Any) -> None:
    settings.DEV_OUTBOX = True
    page = _get(admin_user).content.decode()
    assert "rita@example.com" in page and "gus@example.com" in page
    assert "Approval needed: payments.refund on stripe:charge/ch_1" in page
    # This site's links are clickable as paths, so they work on whatever port runs.
    assert 'href="/links/' in page
    assert f'href="/actions/{sent.pk}/"' in page


def test_others_see_only_their_own(settings: Any, sent: Any, rita: Any, outsider: Any) -> None:
    settings.DEV_OUTBOX = True
    page = _get(rita).content.decode()
    assert "rita@example.com" in page and "gus@example.com" not in page
    assert "No emails yet" in _get(outsider).content.decode()


def test_outside_links_stay_text(settings: Any) -> None:
    from oversight.notifications.views import _linked

    settings.SITE_URL = "http://127.0.0.1:8000"
    html = _linked("see http://evil.example/x and <b> http://127.0.0.1:8000/actions/1/")
    assert '<a href="/actions/1/">' in html
    assert "evil.example" in html and 'href="http://evil' not in html
    assert "&lt;b&gt;" in html


def test_anonymous_visitors_are_sent_to_log_in(settings: Any) -> None:
    settings.DEV_OUTBOX = True
    assert Client().get("/dev/outbox/").status_code == 302
