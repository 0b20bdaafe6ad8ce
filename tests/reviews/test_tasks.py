"""The Celery tasks are thin: each runs its periodic service at the current time."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from oversight.agents.models import Agent
from oversight.celery import app as celery_app
from oversight.reviews import tasks
from tests.reviews.helpers import fresh

pytestmark = pytest.mark.django_db


def test_the_beat_schedule_names_the_review_tasks() -> None:
    scheduled = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    for task in (tasks.reviews_remind, tasks.owners_check, tasks.agents_retire_inactive):
        assert task.name in scheduled
        assert task.name in celery_app.tasks


def test_the_tasks_run_their_jobs_and_repeat_harmlessly(agent: Agent, owner: Any) -> None:
    get_user_model().objects.filter(pk=owner.pk).update(is_active=False)
    assert tasks.owners_check.delay().get() == {"flagged": 1}
    assert tasks.owners_check.delay().get() == {}
    assert fresh(agent).unowned_since is not None
    assert tasks.reviews_remind.delay().get() == {}
    assert tasks.agents_retire_inactive.delay().get() == {}
