"""The beat jobs: the tick as Celery runs it, the prune, the backfill command; and the
schedule itself."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from oversight.celery import app
from oversight.monitoring.jobs import monitoring_run, rollups_prune
from oversight.monitoring.models import AgentMinute, Alert, ResourceFamily
from oversight.monitoring.tasks import monitoring_prune, monitoring_tick
from tests.monitoring.helpers import MINUTE, NOW, actions_at

pytestmark = pytest.mark.django_db


def test_the_tick_rolls_up_and_alerts_on_what_just_happened(agent: Any) -> None:
    actions_at(agent, timezone.now() - dt.timedelta(seconds=5), 320)
    result = monitoring_tick.apply().get()
    assert result["opened"] == 1 and result["minutes"] >= 1
    assert Alert.objects.get(agent=agent).kind == "volume"


def test_the_tick_travels_through_time(agent: Any) -> None:
    """Runs at successive times see only their own window: yesterday's burst is history."""
    yesterday = NOW - dt.timedelta(days=1)
    actions_at(agent, yesterday - dt.timedelta(seconds=5), 320)
    assert monitoring_run(now=yesterday).opened == 1
    assert monitoring_run(now=yesterday + 10 * MINUTE).updated == 0  # the window moved on
    assert monitoring_run(now=NOW).minutes == 0  # nothing in the last minutes today
    assert AgentMinute.objects.get(agent=agent).actions == 320
    assert Alert.objects.get(agent=agent).last_seen_at == yesterday


def test_the_prune_deletes_old_rollups_only(agent: Any) -> None:
    old = NOW - dt.timedelta(days=31)
    actions_at(agent, old, 2)
    actions_at(agent, NOW - dt.timedelta(days=29), 3)
    monitoring_run(now=old + MINUTE)
    monitoring_run(now=NOW - dt.timedelta(days=29) + MINUTE)
    assert AgentMinute.objects.count() == 2
    assert rollups_prune(now=NOW) == 1
    assert list(AgentMinute.objects.values_list("actions", flat=True)) == [3]
    assert ResourceFamily.objects.count() == 1  # what the agent touched is remembered


def test_the_prune_task_uses_the_current_time(agent: Any) -> None:
    actions_at(agent, timezone.now() - dt.timedelta(days=40), 1)
    call_command("monitoring_backfill", "--days", "45", stdout=StringIO())
    assert AgentMinute.objects.count() == 1
    assert monitoring_prune.apply().get() == 1


def test_backfill_learns_quietly(agent: Any) -> None:
    actions_at(agent, timezone.now() - dt.timedelta(days=3), 400, resource="db:users:1")
    out = StringIO()
    call_command("monitoring_backfill", "--days", "14", stdout=out)
    assert "learnt 1 families" in out.getvalue()
    assert Alert.objects.count() == 0
    assert ResourceFamily.objects.get().family == "db:users"


def test_backfill_refuses_a_silly_span() -> None:
    with pytest.raises(CommandError):
        call_command("monitoring_backfill", "--days", "0")


def test_the_beat_schedule_runs_detection_at_least_every_minute() -> None:
    tick = app.conf.beat_schedule["monitoring-tick"]
    assert tick["task"] == monitoring_tick.name
    assert tick["schedule"] <= 60
    assert app.conf.beat_schedule["monitoring-prune"]["task"] == monitoring_prune.name
