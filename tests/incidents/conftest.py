"""Incident tests run their analysis inline, as in the zero-install default, also on the
PostgreSQL and Redis run (the browser test runs it in a real worker)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _eager_tasks(eager_tasks: None) -> None:
    """tests/conftest.py's ``eager_tasks`` for every test here."""
