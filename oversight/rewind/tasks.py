"""Jobs of rewind: the runner's steps."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from oversight.rewind import runner, webhook


@shared_task(name="oversight.rewind.tasks.rewind_step_task")
def rewind_step_task(rewind_id: int) -> dict[str, int]:
    """A step of one rewind after it changed or moved (idempotent). With a broker it stays
    with the rewind while its undos are on their way, REWIND_FOLLOW_SECONDS at most,
    recording each as it ends and asking for the next at once, then hands over to a new
    job if it moved meanwhile. Without one (jobs inline), one pass: the beat does the rest.
    """
    follow = settings.REWIND_FOLLOW_SECONDS
    done = runner.rewind_step(rewind_id=rewind_id, follow=follow)
    if follow and (done["asked"] or done["finished"]) and done["on_their_way"]:
        rewind_step_task.delay(rewind_id)
    return done


@shared_task(name="oversight.rewind.tasks.rewinds_step")
def rewinds_step() -> dict[str, Any]:
    """A step of every running rewind: asks for the next undos, records ended ones."""
    return runner.rewinds_step()


@shared_task(name="oversight.rewind.tasks.compensations_by_webhook")
def compensations_by_webhook() -> dict[str, int]:
    """Runnable compensations of teams with a compensation webhook, sent to it."""
    return webhook.compensations_by_webhook()
