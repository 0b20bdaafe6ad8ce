"""`manage.py periodic`: the beat schedule run in-process, for a server without Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from oversight.celery import app
from oversight.monitoring.models import Alert
from tests.monitoring.helpers import actions_at

pytestmark = pytest.mark.django_db


def test_once_runs_every_job_of_the_schedule_and_a_burst_is_alerted(agent: Any) -> None:
    actions_at(agent, timezone.now() - dt.timedelta(seconds=5), 320)
    out = StringIO()
    call_command("periodic", "--once", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines == [f"{name}: done" for name in app.conf.beat_schedule]
    assert Alert.objects.get(agent=agent).kind == "volume"


def _lifespan_round_trip(thread_seen: list[bool]) -> None:
    """Start and stop the ASGI lifespan, noting whether the schedule ran in between."""
    from oversight.core import periodic
    from oversight.live.lifespan import lifespan

    async def run() -> None:
        inbox = asyncio.Queue[dict[str, Any]]()
        sent: list[str] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])
            if message["type"] == "lifespan.startup.complete":
                thread_seen.append(periodic._running is not None)
                await inbox.put({"type": "lifespan.shutdown"})

        await inbox.put({"type": "lifespan.startup"})
        await lifespan({"type": "lifespan"}, inbox.get, send)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        thread_seen.append(periodic._running is not None)

    try:
        asyncio.run(run())
    finally:
        gc.unfreeze()  # startup froze the test process's objects; give them back


@pytest.mark.parametrize("in_server", [True, False])
def test_the_server_runs_the_schedule_between_startup_and_shutdown_only_without_a_broker(
    settings: Any, in_server: bool
) -> None:
    settings.PERIODIC_IN_SERVER = in_server
    seen: list[bool] = []
    _lifespan_round_trip(seen)
    assert seen == [in_server, False]


def test_a_failing_job_is_reported_and_the_next_ones_still_run(agent: Any) -> None:
    from oversight.core import periodic

    schedule = periodic.Schedule(
        {
            "broken": {"task": "oversight.no_such_module.task", "schedule": 1.0},
            "expire": {"task": "oversight.gateway.tasks.expire_due_actions", "schedule": 1.0},
        }
    )
    schedule.last_run = dict.fromkeys(schedule.entries, timezone.now() - dt.timedelta(seconds=5))
    reports: list[tuple[str, bool]] = []
    schedule.run_due(lambda name, failure: reports.append((name, failure is None)))
    assert reports == [("broken", False), ("expire", True)]
