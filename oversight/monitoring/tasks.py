"""Beat jobs of monitoring; each calls one function of ``jobs`` with the current time."""

from __future__ import annotations

import dataclasses

from celery import shared_task
from django.utils import timezone

from oversight.monitoring.jobs import monitoring_run, rollups_prune


@shared_task(name="oversight.monitoring.tasks.monitoring_tick")
def monitoring_tick() -> dict[str, int]:
    """Roll up the last minutes, detect, and raise or update alerts."""
    return dataclasses.asdict(monitoring_run(now=timezone.now()))


@shared_task(name="oversight.monitoring.tasks.monitoring_prune")
def monitoring_prune() -> int:
    """Delete rollups past their retention."""
    return rollups_prune(now=timezone.now())
