"""Give monitoring a baseline from the actions already recorded (run once after deploying)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from oversight.monitoring.jobs import monitoring_backfill


class Command(BaseCommand):
    help = "Roll up the last --days of actions and learn their resource families quietly."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=14)

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        if not 1 <= days <= 365:
            raise CommandError("--days must be between 1 and 365.")
        now = timezone.now()
        result = monitoring_backfill(start=now - dt.timedelta(days=days), end=now)
        self.stdout.write(
            f"Rolled up {result.minutes} agent-minutes; learnt {result.families_learnt} families."
        )
