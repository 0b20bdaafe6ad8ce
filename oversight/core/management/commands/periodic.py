"""Run the Celery beat schedule in this process, once or until stopped.

Without a broker the web server runs the schedule itself (oversight/core/periodic.py);
this command runs the same schedule on its own: once (``--once``, every job, for a check
or a cron line), or in a process of its own. Its changes reach open pages only through a
channel layer that crosses processes (Redis).

With Redis, run Celery beat and workers instead (docs/deploy.md).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from oversight.core import periodic


class Command(BaseCommand):
    help = "Run the beat schedule's jobs in this process, each when it is due (Ctrl-C stops)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="run every job once and stop")

    def handle(self, *args: Any, once: bool = False, **options: Any) -> None:
        if once:
            for name, entry in periodic.entries().items():
                self._report(name, periodic.run_entry(name, entry))
            return
        schedule = periodic.Schedule()
        try:
            while True:
                schedule.run_due(self._report)
                time.sleep(1)
        except KeyboardInterrupt:
            return

    def _report(self, name: str, failure: str | None) -> None:
        if failure is None:
            self.stdout.write(f"{name}: done")
        else:
            self.stderr.write(f"{name}: failed: {failure}")
