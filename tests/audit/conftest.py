"""The audit tests tamper with the log, and a checkpoint refused for that is remembered in
the cache until one is written (checkpoints.REFUSED_KEY): each test starts without it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache

from oversight.audit.checkpoints import REFUSED_KEY


@pytest.fixture(autouse=True)
def _no_refusal_remembered() -> Iterator[None]:
    cache.delete(REFUSED_KEY)
    yield
    cache.delete(REFUSED_KEY)
