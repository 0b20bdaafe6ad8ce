"""`manage.py periodic`: the beat schedule run in-process, for a server without Redis."""

from __future__ import annotations

import datetime as dt
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
