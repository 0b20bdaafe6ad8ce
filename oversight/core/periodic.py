"""The beat schedule (oversight/celery.py) run without Celery beat: the periodic jobs of a
server without a broker, the zero-install run.

Without Redis the channel layer lives in the web server's memory, so a job must run in
that process for what it changes (an expiry, a new alert) to reach open pages. The web
server therefore runs the schedule on a thread of its own, started and stopped with its
ASGI lifespan (oversight/live/lifespan.py; docs/decisions/0018-periodic-jobs-in-the-server.md).
``manage.py periodic`` runs the same schedule in a process of its own, or once.

The schedule has one source: the entries of ``app.conf.beat_schedule``, each task run
inline with ``apply`` as a worker would run it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from celery.schedules import schedule as every
from celery.utils.imports import symbol_by_name
from django.db import close_old_connections, connections
from django.utils import timezone

from oversight.celery import app

logger = logging.getLogger(__name__)

# How long the server's shutdown waits for a job that is running to finish; past it the
# job's thread ends with the process (a transaction cut short is rolled back).
STOP_TIMEOUT = 5.0


def _schedule(entry: dict[str, Any]) -> Any:
    value = entry["schedule"]
    return every(dt.timedelta(seconds=value)) if isinstance(value, int | float) else value


def entries() -> dict[str, dict[str, Any]]:
    return dict(app.conf.beat_schedule)


def run_entry(name: str, entry: dict[str, Any]) -> str | None:
    """Run one entry's task inline; returns its failure, or None. A failing job never
    stops the others: it is logged and tried again when next due."""
    try:
        task = symbol_by_name(entry["task"])
        # Failures may come back in the result or raised (task_eager_propagates).
        result = task.apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
        failure = repr(result.result) if result.failed() else None
    except Exception as exc:
        failure = repr(exc)
    if failure is not None:
        logger.error("periodic job %s failed: %s", name, failure)
    return failure


class Schedule:
    """When each entry last ran, and which are due. The first run of each is one
    period after start, as with Celery beat."""

    def __init__(self, schedule: dict[str, dict[str, Any]] | None = None) -> None:
        self.entries = schedule if schedule is not None else entries()
        started = timezone.now()
        self.last_run = dict.fromkeys(self.entries, started)

    def run_due(self, report: Callable[[str, str | None], None] | None = None) -> None:
        for name, entry in self.entries.items():
            due, _ = _schedule(entry).is_due(self.last_run[name])
            if due:
                self.last_run[name] = timezone.now()
                failure = run_entry(name, entry)
                if report is not None:
                    report(name, failure)


class ScheduleThread:
    """The schedule on a daemon thread, checked every ``tick`` seconds until stopped."""

    def __init__(self, tick: float = 1.0) -> None:
        self.tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="periodic-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("a periodic job was still running when the server stopped")

    def _run(self) -> None:
        schedule = Schedule()
        try:
            while not self._stop.wait(self.tick):
                # As a Celery worker does around each task: a connection the database
                # dropped, or one past its age, is not reused.
                close_old_connections()
                try:
                    schedule.run_due()
                except Exception:  # the schedule itself must keep going
                    logger.exception("periodic jobs: the schedule failed")
                finally:
                    close_old_connections()
        finally:
            connections.close_all()


_running: ScheduleThread | None = None


def start_in_server() -> None:
    """On the server's startup (its lifespan), when it runs the schedule itself."""
    global _running
    if _running is None:
        # A line per job every few seconds would bury the server's own log; failures are
        # still logged (run_entry).
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        _running = ScheduleThread()
        _running.start()


def stop_in_server() -> None:
    """On the server's shutdown: no job starts after this returns."""
    global _running
    running, _running = _running, None
    if running is not None:
        running.stop()
