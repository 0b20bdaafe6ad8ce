"""/healthz: public, JSON, and honest about each dependency."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client

pytestmark = pytest.mark.django_db

URL = "/healthz"


def test_it_is_public_json_and_healthy(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["vendor"] == connection.vendor


def test_it_is_never_cached(client: Client) -> None:
    response = client.get(URL)
    assert "no-cache" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]


def test_redis_is_reported_as_not_configured_without_redis_url(
    client: Client, settings: Any
) -> None:
    settings.REDIS_URL = None
    response = client.get(URL)
    assert response.status_code == 200
    assert response.json()["redis"] == {"ok": True, "configured": False}


@pytest.mark.postgres
def test_it_pings_the_configured_redis(client: Client, settings: Any) -> None:
    assert settings.REDIS_URL, "the PostgreSQL run also sets REDIS_URL (see bin/test)"
    response = client.get(URL)
    assert response.status_code == 200
    redis = response.json()["redis"]
    assert redis["configured"] is True
    assert redis["ok"] is True


def test_an_unreachable_redis_makes_it_unavailable(client: Client, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get(URL)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["redis"]["configured"] is True
    assert body["redis"]["ok"] is False
    assert body["redis"]["error"]
    assert body["database"]["ok"] is True


def test_a_dependency_that_never_answers_is_reported_in_time(client: Client, settings: Any) -> None:
    """A Redis that accepts the connection and then says nothing (a hung server): the probe
    still answers within two seconds."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody ever replies
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()
        response = client.get(URL)
        seconds = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["redis"] == {"ok": False, "error": "no answer in 1.0 s"}
    assert response.json()["database"]["ok"] is True
    assert seconds < 2


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_it_only_answers_get(client: Client, method: str) -> None:
    assert getattr(client, method)(URL).status_code == 405


def test_it_needs_no_login_and_sets_no_session(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 200
    assert "sessionid" not in response.cookies


def test_load_balancers_may_probe_over_plain_http_in_production(
    client: Client, settings: Any, owner: Any
) -> None:
    """Production redirects HTTP to HTTPS, except this probe (SECURE_REDIRECT_EXEMPT)."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(URL).status_code == 200
    client.force_login(owner)
    redirected = client.get("/agents/")
    assert redirected.status_code == 301
    assert redirected["Location"].startswith("https://")


def test_ping_answers_without_touching_the_database(client: Client) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"pong": True}
