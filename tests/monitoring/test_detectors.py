"""Detectors on synthetic traffic, with rollups computed at an explicit time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from oversight.gateway.constants import ActionStatus
from oversight.monitoring.constants import AlertKind, Severity
from oversight.monitoring.jobs import monitoring_backfill, monitoring_run
from oversight.monitoring.models import AgentMinute, Alert, ResourceFamily
from tests.monitoring.helpers import MINUTE, NOW, actions_at, history, hourly, steady

pytestmark = pytest.mark.django_db


def recent_steady(agent: Any, per_minute: int = 10, **fields: Any) -> None:
    """The same steady rate over the five minutes of the window (the last one partial)."""
    for m in range(4, -1, -1):
        actions_at(agent, NOW.replace(second=0) - m * MINUTE, per_minute, **fields)


def alerts(agent: Any, kind: str | None = None) -> list[Alert]:
    qs = Alert.objects.filter(agent=agent)
    return list(qs.filter(kind=kind) if kind else qs)


def test_steady_traffic_raises_nothing(agent: Any) -> None:
    history(agent)
    recent_steady(agent)
    result = monitoring_run(now=NOW)
    assert result.opened == 0
    assert alerts(agent) == []
    assert AgentMinute.objects.filter(agent=agent, minute=NOW.replace(second=0)).get().actions == 10


def test_steady_traffic_through_time_raises_nothing(agent: Any) -> None:
    """Every run of a steady day, from the agent's first minute on, stays quiet."""
    start = NOW - dt.timedelta(hours=2)
    steady(agent, end=NOW, minutes=120, per_minute=10)
    for step in range(0, 121, 5):
        monitoring_run(now=start + step * MINUTE)
    assert alerts(agent) == []
    assert AgentMinute.objects.filter(agent=agent).count() == 120


def test_a_burst_raises_one_volume_alert(agent: Any) -> None:
    history(agent)
    recent_steady(agent)
    burst = actions_at(agent, NOW - dt.timedelta(seconds=10), 460)
    monitoring_run(now=NOW)
    monitoring_run(now=NOW + dt.timedelta(seconds=30))  # the condition goes on

    (alert,) = alerts(agent)
    assert alert.kind == AlertKind.VOLUME
    assert alert.severity == Severity.CRITICAL  # 510 >= 2 x 250
    assert alert.count == 2
    assert alert.last_seen_at == NOW + dt.timedelta(seconds=30)
    assert alert.evidence["actions_in_window"] == 510
    assert alert.evidence["baseline_per_window"] == 50.0
    assert alert.evidence["threshold"] == 250.0
    ids = {a["id"] for a in alert.evidence["actions"]}
    assert len(ids) == 50 and ids <= {str(a.pk) for a in burst}


def test_a_new_agent_is_judged_by_the_floor_not_by_its_own_first_minutes(agent: Any) -> None:
    """Ten minutes old at about 100 actions per 5 minutes, then 424 in its window: that
    took a "baseline" of 100.5 from its first ten minutes (threshold 502.5, no alert)
    while the title said "no baseline yet"; under an hour the threshold is 5 x 30."""
    for m in range(10, 4, -1):
        actions_at(agent, NOW.replace(second=0) - m * MINUTE, 20)
    recent_steady(agent, per_minute=20)
    actions_at(agent, NOW - dt.timedelta(seconds=10), 324)
    monitoring_run(now=NOW)
    (alert,) = alerts(agent)
    assert (alert.kind, alert.severity) == (AlertKind.VOLUME, Severity.CRITICAL)  # >= 300
    assert alert.title == "424 actions in 5 minutes (no baseline yet)"
    assert alert.evidence["baseline_per_window"] == 30.0
    assert alert.evidence["threshold"] == 150.0


def test_a_smaller_burst_is_a_warning(agent: Any) -> None:
    history(agent)
    recent_steady(agent)
    actions_at(agent, NOW - dt.timedelta(seconds=10), 220)  # 270 > 250
    monitoring_run(now=NOW)
    (alert,) = alerts(agent)
    assert (alert.kind, alert.severity) == (AlertKind.VOLUME, Severity.WARNING)


def test_a_quiet_agents_blip_raises_nothing(agent: Any) -> None:
    hourly(agent, end=NOW, days=3, hours=range(24))
    monitoring_backfill(start=NOW - dt.timedelta(days=4), end=NOW - 4 * MINUTE)
    actions_at(agent, NOW - dt.timedelta(seconds=5), 12)
    assert monitoring_run(now=NOW).opened == 0
    assert alerts(agent) == []


def test_an_agent_back_after_idle_days_at_its_usual_rate_raises_nothing(agent: Any) -> None:
    """Days without actions (a weekend, a batch agent's day off, Oversight itself down) do
    not dilute the baseline: it is the agent's rate in the minutes in which it acted."""
    history(agent, now=NOW - dt.timedelta(days=3), per_minute=20)
    recent_steady(agent, per_minute=20)
    assert monitoring_run(now=NOW).opened == 0
    assert alerts(agent) == []


def test_an_hourly_batch_at_its_usual_size_raises_nothing(agent: Any) -> None:
    """A cron agent: 100 actions in one minute each hour, for a day, then the same again."""
    for hours_ago in range(24, 0, -1):
        actions_at(agent, NOW.replace(second=0) - dt.timedelta(hours=hours_ago), 100)
    monitoring_backfill(start=NOW - dt.timedelta(days=2), end=NOW - 4 * MINUTE)
    actions_at(agent, NOW - dt.timedelta(seconds=10), 100)
    assert monitoring_run(now=NOW).opened == 0
    assert alerts(agent) == []


def test_a_burst_after_idle_days_is_judged_against_the_agents_working_rate(agent: Any) -> None:
    history(agent, now=NOW - dt.timedelta(days=3), per_minute=20)  # 180 minutes of 20
    recent_steady(agent, per_minute=20)
    actions_at(agent, NOW - dt.timedelta(seconds=10), 450)
    monitoring_run(now=NOW)
    (alert,) = alerts(agent)
    assert (alert.kind, alert.severity) == (AlertKind.VOLUME, Severity.WARNING)  # 550 < 2 x 500
    assert alert.evidence["baseline_active_minutes"] == 180
    assert alert.evidence["baseline_minutes"] == 3 * 24 * 60 + 180
    assert alert.evidence["baseline_per_window"] == 100.0
    assert alert.evidence["threshold"] == 500.0


def test_an_error_spike_raises_one_alert(agent: Any) -> None:
    history(agent)
    recent_steady(agent)
    failed = actions_at(agent, NOW - dt.timedelta(seconds=8), 20, status=ActionStatus.FAILED)
    monitoring_run(now=NOW)
    monitoring_run(now=NOW + dt.timedelta(seconds=20))
    (alert,) = alerts(agent)
    assert (alert.kind, alert.severity, alert.count) == (AlertKind.ERROR_RATE, Severity.WARNING, 2)
    assert (alert.evidence["failed"], alert.evidence["actions_in_window"]) == (20, 70)
    assert {a["id"] for a in alert.evidence["actions"]} == {str(a.pk) for a in failed}


def test_a_late_failure_is_counted_when_its_minute_is_recomputed(agent: Any) -> None:
    history(agent)
    done = actions_at(agent, NOW - 2 * MINUTE, 10)
    monitoring_run(now=NOW)
    assert alerts(agent) == []
    for action in done:  # the agent reports its results a minute later
        action.status = ActionStatus.FAILED
        action.save(update_fields=["status"])
    monitoring_run(now=NOW + MINUTE)
    (alert,) = alerts(agent)
    assert alert.kind == AlertKind.ERROR_RATE


def test_a_denial_spike_raises_one_alert(agent: Any) -> None:
    history(agent)
    actions_at(agent, NOW - dt.timedelta(seconds=8), 8, decision=ActionStatus.DENIED)
    monitoring_run(now=NOW)
    monitoring_run(now=NOW)
    (alert,) = alerts(agent)
    assert (alert.kind, alert.severity) == (AlertKind.DENIAL_RATE, Severity.WARNING)


def test_a_flood_of_denials_is_critical(agent: Any) -> None:
    history(agent)
    actions_at(agent, NOW - dt.timedelta(seconds=8), 20, decision=ActionStatus.DENIED)
    monitoring_run(now=NOW)
    (alert,) = alerts(agent)
    assert (alert.kind, alert.severity) == (AlertKind.DENIAL_RATE, Severity.CRITICAL)


def test_denials_at_the_agents_usual_rate_raise_nothing(agent: Any) -> None:
    history(agent, per_minute=4)
    steady(
        agent,
        end=NOW.replace(second=0) - 4 * MINUTE,
        minutes=180,
        per_minute=4,
        decision=ActionStatus.DENIED,
    )
    monitoring_backfill(start=NOW - dt.timedelta(hours=4), end=NOW.replace(second=0) - 4 * MINUTE)
    recent_steady(agent, per_minute=4)
    recent_steady(agent, per_minute=4, decision=ActionStatus.DENIED)
    monitoring_run(now=NOW)
    assert alerts(agent) == []


def test_a_new_resource_family_raises_one_alert(agent: Any) -> None:
    hourly(agent, end=NOW, days=2, hours=range(9, 18))
    monitoring_backfill(start=NOW - dt.timedelta(days=3), end=NOW - 4 * MINUTE)
    first = actions_at(agent, NOW - dt.timedelta(seconds=30), resource="stripe:customer/cus_9")
    monitoring_run(now=NOW)
    actions_at(agent, NOW + dt.timedelta(seconds=5), 2, resource="stripe:customer/cus_7")
    monitoring_run(now=NOW + dt.timedelta(seconds=30))

    (alert,) = alerts(agent)
    assert (alert.kind, alert.severity) == (AlertKind.NEW_RESOURCE, Severity.WARNING)
    assert alert.evidence["family"] == "stripe:customer"
    assert alert.dedupe_key == "new_resource:stripe:customer"
    assert alert.evidence["actions"][0]["id"] == str(first[0].pk)
    family = ResourceFamily.objects.get(agent=agent, family="stripe:customer")
    assert family.first_action_id == first[0].pk


def test_familiar_resources_raise_nothing(agent: Any) -> None:
    hourly(agent, end=NOW, days=2, hours=range(9, 18))
    monitoring_backfill(start=NOW - dt.timedelta(days=3), end=NOW - 4 * MINUTE)
    actions_at(agent, NOW - dt.timedelta(seconds=30), 3, resource="stripe:charge/ch_new")
    monitoring_run(now=NOW)
    assert alerts(agent) == []


def test_a_new_agent_learns_its_families_quietly(agent: Any) -> None:
    actions_at(agent, NOW - dt.timedelta(seconds=30), resource="stripe:charge/ch_1")
    actions_at(agent, NOW - dt.timedelta(seconds=20), resource="s3://exports/2030/x.csv")
    monitoring_run(now=NOW)
    assert alerts(agent) == []
    assert set(ResourceFamily.objects.values_list("family", flat=True)) == {
        "stripe:charge",
        "s3://exports/2030",
    }


def test_activity_outside_usual_hours_raises_one_alert(agent: Any) -> None:
    night = NOW.replace(hour=3, minute=10)
    hourly(agent, end=night, days=8, hours=range(9, 18))
    monitoring_backfill(start=night - dt.timedelta(days=9), end=night - 4 * MINUTE)
    actions_at(agent, night - dt.timedelta(seconds=15), 4)
    monitoring_run(now=night)
    monitoring_run(now=night + MINUTE)
    (alert,) = alerts(agent)
    assert (alert.kind, alert.severity, alert.count) == (AlertKind.OFF_HOURS, Severity.WARNING, 2)
    assert alert.evidence["hours"] == [3]
    assert alert.evidence["usual_hours"] == list(range(9, 18))


def test_usual_hours_raise_nothing_and_short_histories_are_not_judged(agent: Any) -> None:
    day = NOW.replace(hour=11, minute=10)
    hourly(agent, end=day, days=8, hours=range(9, 18))
    monitoring_backfill(start=day - dt.timedelta(days=9), end=day - 4 * MINUTE)
    actions_at(agent, day - dt.timedelta(seconds=15), 4)
    monitoring_run(now=day)
    assert alerts(agent) == []


def test_other_agents_are_judged_on_their_own(agent: Any, other_agent: Any) -> None:
    history(agent)
    history(other_agent, per_minute=100)
    actions_at(other_agent, NOW - dt.timedelta(seconds=10), 300)
    recent_steady(other_agent, per_minute=100)
    actions_at(agent, NOW - dt.timedelta(seconds=10), 300)
    monitoring_run(now=NOW)
    assert [a.kind for a in alerts(agent)] == [AlertKind.VOLUME]
    assert alerts(other_agent) == []


def test_actions_a_kill_switch_halted_are_not_judged(agent: Any) -> None:
    """Counted as denials, an agent's kill switch raised a critical alert, whose hold went
    on holding the agent's actions once the switch was released."""
    history(agent)
    actions_at(agent, NOW - dt.timedelta(seconds=8), 30, decision=ActionStatus.HALTED)
    actions_at(
        agent, NOW - dt.timedelta(seconds=5), 4, decision=ActionStatus.HALTED, resource="s3://x"
    )
    monitoring_run(now=NOW)
    assert alerts(agent) == []
    minutes = AgentMinute.objects.filter(agent=agent, minute__gte=NOW - 5 * MINUTE)
    assert sum(m.denied for m in minutes) == 0
    assert not ResourceFamily.objects.filter(agent=agent, family__startswith="s3").exists()
