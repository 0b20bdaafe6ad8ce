"""Beat jobs of releases."""

from __future__ import annotations

from celery import shared_task

from oversight.releases import guard


@shared_task(name="oversight.releases.tasks.rollouts_guard")
def rollouts_guard() -> dict[str, str]:
    """Look at every running rollout: roll back on a regression, advance when enough."""
    return guard.rollouts_guard()
