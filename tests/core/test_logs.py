"""What the web log says of a refused request: one line, no traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_a_page_someone_may_not_see_is_logged_in_one_line(
    teammate: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client()
    client.force_login(teammate)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(reverse("audit:list")).status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Forbidden (Permission denied): /audit/"
    assert record.exc_info is None
