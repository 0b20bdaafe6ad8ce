"""Webhooks go to public addresses only, unless WEBHOOK_ALLOWED_NETWORKS allows others: a
URL typed in by a team must not make Oversight POST to services inside its network (a
cloud's metadata service, an admin port on this machine). Checked when a URL is saved
and when it is used, where the name is resolved and the request goes to the address
checked. Real receivers on 127.0.0.1; the tests' settings allow loopback, and these tests
take that back."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.test import Client
from django.urls import reverse

from oversight.audit import sinks
from oversight.audit.models import AuditEvent, SinkState
from oversight.lib.env import envnetworks
from oversight.notifications import webhook_http
from oversight.notifications.models import Notification, TeamChannels
from oversight.notifications.tasks import send_notification
from oversight.notifications.webhook_http import INTERNAL, validate_webhook_url, webhook_post
from tests.audit.test_checkpoints import webhook_delivery
from tests.notifications.receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.django_db

INTERNAL_URLS = [
    "https://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "https://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
    "https://100.64.0.1/hook",  # shared address space
    "https://0.0.0.0/hook",
    "https://[::1]/hook",
    "https://[fd00::1]/hook",
    "https://[::ffff:10.0.0.1]/hook",  # 10.0.0.1, written as IPv6
    "https://localhost/hook",
    "http://127.0.0.1:9999/hook",
]


@pytest.fixture
def nothing_internal(settings: Any) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = []


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_an_internal_address_in_the_url_is_refused_when_saved(
    nothing_internal: None, url: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_webhook_url(url)
    assert refused.value.messages == [INTERNAL]


def test_a_public_address_or_a_name_is_saved(nothing_internal: None) -> None:
    validate_webhook_url("https://93.184.216.34/hook")
    validate_webhook_url("https://hooks.example.com/hook")  # resolved when used


def test_an_allowed_network_lets_its_addresses_in(settings: Any) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8", "fd00::/8"]
    validate_webhook_url("https://10.1.2.3/hook")
    validate_webhook_url("https://[fd00::1]/hook")
    with pytest.raises(ValidationError):
        validate_webhook_url("https://192.168.0.10/hook")


def test_debug_allows_any_address(settings: Any) -> None:
    settings.DEBUG, settings.WEBHOOK_ALLOWED_NETWORKS = True, []
    validate_webhook_url("https://169.254.169.254/latest/meta-data/")


def test_the_team_settings_page_refuses_an_internal_address(
    client: Client, owner: Any, team: Any, nothing_internal: None
) -> None:
    client.force_login(owner)
    url = reverse("notifications:team", args=[team.slug])
    response = client.post(url, {"webhook_url": "https://169.254.169.254/latest/meta-data/"})
    assert response.status_code == 200
    assert "internal address" in response.content.decode()
    assert not TeamChannels.objects.filter(team=team).exists()
    assert not AuditEvent.objects.filter(verb="team_channels.updated").exists()


def test_a_name_that_resolves_to_an_internal_address_is_not_sent_to(
    team: Any, webhook: Notification, receiver: Receiver, nothing_internal: None
) -> None:
    # localhost resolves to 127.0.0.1 (/etc/hosts), where the receiver listens.
    TeamChannels.objects.filter(team=team).update(
        webhook_url=receiver.url.replace("127.0.0.1", "localhost")
    )
    assert send_notification.delay(webhook.pk).get() == "failed"
    failed = Notification.objects.get(pk=webhook.pk)
    assert (failed.attempts, failed.last_error) == (1, INTERNAL)  # for good: not retried
    assert receiver.received == []


def test_the_request_goes_to_the_address_checked_with_the_name_kept(
    team: Any, webhook: Notification, receiver: Receiver
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    TeamChannels.objects.filter(team=team).update(
        webhook_url=receiver.url.replace("127.0.0.1", "localhost")
    )
    assert send_notification.delay(webhook.pk).get() == "sent"
    (sent,) = receiver.received
    assert sent.headers["Host"] == f"localhost:{port}"


def test_a_name_that_does_not_resolve_is_a_network_error(nothing_internal: None) -> None:
    import httpx

    with pytest.raises(httpx.ConnectError, match="could not be resolved"):
        webhook_post("https://no-such-host.invalid/hook", body=b"{}", headers={})


def test_a_checkpoint_webhook_to_an_internal_address_fails_for_good(
    settings: Any, nothing_internal: None
) -> None:
    with webhook_receiver() as receiver:
        delivery = webhook_delivery(settings, receiver.url, 1)
        assert sinks.checkpoint_deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.state, delivery.last_error) == (SinkState.FAILED, f"SinkError: {INTERNAL}")
    assert receiver.received == []


def test_the_allowed_networks_setting_is_read_and_checked(monkeypatch: Any) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8, 127.0.0.1 ,fd00::/8")
    assert envnetworks("WEBHOOK_ALLOWED_NETWORKS", []) == ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8,intranet")
    with pytest.raises(ImproperlyConfigured, match="'intranet' is not an IP network"):
        envnetworks("WEBHOOK_ALLOWED_NETWORKS", [])


def test_a_name_lookup_that_does_not_answer_ends_with_the_webhooks_time_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The system's resolver (a name server that does not answer) could hold a send for
    as long as its own retries take, half a minute and more; the lookup now has the
    webhook's time-out. (The resolver is made to hang here: no name server can be set
    for one process.)"""
    released = threading.Event()

    def hanging(*args: Any, **kwargs: Any) -> Any:
        released.wait(30)
        raise socket.gaierror("released")

    monkeypatch.setattr(webhook_http.socket, "getaddrinfo", hanging)
    monkeypatch.setattr(webhook_http, "WEBHOOK_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    try:
        with pytest.raises(httpx.ConnectError) as failed:
            webhook_post("https://hooks.example.com/hook", body=b"{}", headers={})
    finally:
        released.set()
    assert time.monotonic() - started < 2
    assert str(failed.value) == "hooks.example.com could not be resolved: no answer in 0.5 s"
