"""Webhook URLs: https in production, plain http only to this machine or under DEBUG."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from oversight.notifications.models import validate_webhook_url


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T0/B0/XYZ",
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]:9000/hook",
    ],
)
def test_it_accepts(url: str) -> None:
    validate_webhook_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/hook",
        "http://10.0.0.5/hook",
        "ftp://hooks.example.com/hook",
        "https://user:pass@hooks.example.com/hook",
        "not a url",
    ],
)
def test_it_refuses(url: str) -> None:
    with pytest.raises(ValidationError):
        validate_webhook_url(url)


@override_settings(DEBUG=True)
def test_under_debug_plain_http_anywhere_is_allowed() -> None:
    validate_webhook_url("http://hooks.example.com/hook")
