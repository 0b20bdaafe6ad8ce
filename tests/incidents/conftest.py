"""Incident tests run their analysis inline, as in the zero-install default, also on the
PostgreSQL and Redis run (the browser test runs it in a real worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oversight.celery import app as celery_app


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    conf = celery_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = saved
