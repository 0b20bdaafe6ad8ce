"""Run the Celery beat schedule in this process: the periodic jobs of a server without
Redis (the zero-install demo), where there is no broker for beat and workers.

With Redis, run Celery beat and workers instead (docs/deploy.md).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from celery.schedules import schedule as every
from celery.utils.imports import symbol_by_name
from django.core.management.base import BaseCommand
from django.utils import timezone

from oversight.celery import app


def _schedule(entry: dict[str, Any]) -> Any:
    value = entry["schedule"]
    return every(dt.timedelta(seconds=value)) if isinstance(value, int | float) else value


class Command(BaseCommand):
    help = "Run the beat schedule's jobs in this process, each when it is due (Ctrl-C stops)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="run every job once and stop")

    def handle(self, *args: Any, once: bool = False, **options: Any) -> None:
        entries = dict(app.conf.beat_schedule)
        if once:
            for name in entries:
                self._run(name, entries[name])
            return
        started = timezone.now()
        last_run = dict.fromkeys(entries, started)
        try:
            while True:
                for name, entry in entries.items():
                    due, _ = _schedule(entry).is_due(last_run[name])
                    if due:
                        last_run[name] = timezone.now()
                        self._run(name, entry)
                time.sleep(1)
        except KeyboardInterrupt:
            return

    def _run(self, name: str, entry: dict[str, Any]) -> None:
        task = symbol_by_name(entry["task"])
        result = task.apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
        if result.failed():
            self.stderr.write(f"{name}: failed: {result.result!r}")
        else:
            self.stdout.write(f"{name}: done", ending="\n")
