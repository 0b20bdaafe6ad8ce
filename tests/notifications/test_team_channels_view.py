"""The team notifications page: owners of the team and admins only, CSRF, audited.

A teammate without the owner role gets 403: they know the team exists, they may not
change how it is told (as with agents: 404 when you cannot see, 403 when you cannot
change). Anyone outside the team gets 404, so other teams' names do not leak.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from oversight.audit.models import AuditEvent
from oversight.notifications.models import Notification, TeamChannels
from tests.notifications.conftest import set_channels
from tests.notifications.receiver import Receiver

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T000/B000/SECRETTOKEN"


def _url(team: Any, name: str = "team") -> str:
    return reverse(f"notifications:{name}", args=[team.slug])


def _save(client: Client, user: Any, team: Any, **data: Any) -> Any:
    client.force_login(user)
    return client.post(_url(team), {"webhook_url": "", **data})


def _channels(team: Any) -> TeamChannels | None:
    return TeamChannels.objects.filter(team=team).first()


def test_anonymous_visitors_are_sent_to_login(client: Client, team: Any) -> None:
    response = client.get(_url(team))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_owner_of_the_team_gets_the_page(client: Client, owner: Any, team: Any) -> None:
    client.force_login(owner)
    response = client.get(_url(team))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Notifications" in page
    assert "Team payments" in page
    assert "Nothing sent yet." in page


@pytest.mark.parametrize("debug", [False, True])
def test_the_help_says_when_debug_lets_any_address_through(
    client: Client, owner: Any, team: Any, debug: bool
) -> None:
    """The webhook's limits (https, public addresses) are not enforced under DEBUG: the
    page says so rather than state limits that do not hold."""
    client.force_login(owner)
    with override_settings(DEBUG=debug):
        page = client.get(_url(team)).content.decode()
    assert "https only, except to localhost" in page
    assert ("This server runs with DEBUG on" in page) is debug


def test_an_admin_gets_any_teams_page(client: Client, admin_user: Any, team: Any) -> None:
    client.force_login(admin_user)
    assert client.get(_url(team)).status_code == 200


@pytest.mark.parametrize("name", ["team", "test", "secret"])
def test_a_teammate_without_the_owner_role_is_refused(
    client: Client, teammate: Any, team: Any, name: str
) -> None:
    client.force_login(teammate)
    assert client.post(_url(team, name), {"email_enabled": "on"}).status_code == 403
    assert client.get(_url(team)).status_code == 403
    assert _channels(team) is None


@pytest.mark.parametrize("name", ["team", "test", "secret"])
def test_outsiders_get_404_even_as_owners_of_another_team(
    client: Client, outsider: Any, other_team: Any, team: Any, name: str
) -> None:
    client.force_login(outsider)
    assert client.get(_url(team)).status_code == 404
    assert client.post(_url(team, name), {"email_enabled": "on"}).status_code == 404
    assert _channels(team) is None


def test_an_unknown_team_is_404(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    assert client.get("/teams/nope/notifications/").status_code == 404


def test_the_owner_sets_the_channels_and_it_is_audited(
    client: Client, owner: Any, team: Any
) -> None:
    response = _save(client, owner, team, email_enabled="on", webhook_url=SLACK_URL)
    assert response.status_code == 302
    assert response["Location"] == _url(team)
    channels = _channels(team)
    assert (channels.email_enabled, channels.webhook_url) == (True, SLACK_URL)
    event = AuditEvent.objects.get(verb="team_channels.updated")
    assert event.actor_label == "alice"
    assert event.before is None
    assert event.after["email_enabled"] is True
    # The log is kept forever: it gets the host and a fingerprint, not the token.
    assert event.after["webhook_url"].startswith("https://hooks.slack.com/… (sha256 ")
    logged = json.dumps([event.before, event.after])
    assert "SECRETTOKEN" not in logged
    assert channels.webhook_secret not in logged


def test_a_change_is_audited_with_before_and_after(client: Client, owner: Any, team: Any) -> None:
    _save(client, owner, team, email_enabled="on")
    _save(client, owner, team)
    last = AuditEvent.objects.filter(verb="team_channels.updated").order_by("-seq").first()
    assert (last.before["email_enabled"], last.after["email_enabled"]) == (True, False)


def test_saving_without_a_change_records_nothing(client: Client, owner: Any, team: Any) -> None:
    _save(client, owner, team, email_enabled="on")
    _save(client, owner, team, email_enabled="on")
    assert AuditEvent.objects.filter(verb="team_channels.updated").count() == 1


def test_plain_http_to_a_public_host_is_refused(client: Client, owner: Any, team: Any) -> None:
    response = _save(client, owner, team, webhook_url="http://hooks.example.com/x")
    assert response.status_code == 200
    assert "Webhook URLs must use https" in response.content.decode()
    assert _channels(team) is None
    assert not AuditEvent.objects.filter(verb="team_channels.updated").exists()


@override_settings(DEBUG=True)
def test_plain_http_anywhere_is_allowed_under_debug(client: Client, owner: Any, team: Any) -> None:
    assert _save(client, owner, team, webhook_url="http://hooks.example.com/x").status_code == 302


def test_plain_http_to_localhost_is_allowed(client: Client, owner: Any, team: Any) -> None:
    assert _save(client, owner, team, webhook_url="http://127.0.0.1:9999/x").status_code == 302


def test_csrf_is_enforced(owner: Any, team: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    for name in ("team", "test", "secret"):
        assert client.post(_url(team, name), {"email_enabled": "on"}).status_code == 403
    assert _channels(team) is None


def test_the_page_shows_the_secret_and_regenerates_it_audited(
    client: Client, owner: Any, team: Any
) -> None:
    old = set_channels(team, email=True).webhook_secret
    client.force_login(owner)
    assert old in client.get(_url(team)).content.decode()
    response = client.post(_url(team, "secret"))
    assert response.status_code == 302
    new = _channels(team).webhook_secret
    assert new != old
    assert new in client.get(_url(team)).content.decode()
    event = AuditEvent.objects.get(verb="team_channels.secret_regenerated")
    assert event.actor_label == "alice"
    assert new not in json.dumps([event.before, event.after])


def test_send_a_test_reaches_the_receiver_and_is_listed(
    client: Client,
    owner: Any,
    team: Any,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, webhook_url=receiver.url)
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(team, "test"))
    assert response.status_code == 302
    (received,) = receiver.received
    assert json.loads(received.body)["oversight"] == {
        "event": "test",
        "team": {"slug": "payments", "name": "payments"},
        "requested_by": "alice",
        "notification_id": Notification.objects.get().pk,
        "timestamp": int(received.headers["X-Oversight-Timestamp"]),
    }
    assert AuditEvent.objects.filter(verb="notification.test_queued").count() == 1
    page = client.get(_url(team)).content.decode()
    assert "Test message queued for 127.0.0.1." in page
    assert '<td data-label="What">Test message' in page
    assert "Sent</span>" in page


def test_send_a_test_without_a_webhook_says_so(client: Client, owner: Any, team: Any) -> None:
    set_channels(team, email=True)
    client.force_login(owner)
    response = client.post(_url(team, "test"), follow=True)
    assert "Set a webhook URL first." in response.content.decode()
    assert not Notification.objects.exists()


def test_get_is_refused_on_the_buttons(client: Client, owner: Any, team: Any) -> None:
    client.force_login(owner)
    assert client.get(_url(team, "test")).status_code == 405
    assert client.get(_url(team, "secret")).status_code == 405


def test_the_latest_twenty_notifications_are_listed(
    client: Client, owner: Any, team: Any, other_team: Any
) -> None:
    for n in range(25):
        Notification.objects.create(
            kind="test",
            channel="webhook",
            recipient=f"host{n}.example",
            team=team,
            dedupe_key=f"k{n}",
            state="failed" if n == 24 else "sent",
            attempts=5,
            last_error="HTTP 500: boom" if n == 24 else "",
        )
    Notification.objects.create(
        kind="test",
        channel="webhook",
        recipient="theirs.example",
        team=other_team,
        dedupe_key="theirs",
    )
    client.force_login(owner)
    page = client.get(_url(team)).content.decode()
    assert page.count("<tr>") == 21  # the header and twenty rows
    assert "host24.example" in page and "HTTP 500: boom" in page
    assert "host4.example" not in page
    assert "theirs.example" not in page
