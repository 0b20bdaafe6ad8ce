"""A critical alert's automatic response, notification and audit; resolving lifts the hold."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from oversight.agents.constants import AgentStatus, AlertResponse
from oversight.agents.services import agent_update
from oversight.audit.models import AuditEvent
from oversight.gateway.constants import ActionStatus
from oversight.monitoring.constants import AlertStatus, Severity
from oversight.monitoring.jobs import monitoring_run
from oversight.monitoring.models import Alert
from oversight.monitoring.services import alert_acknowledge, alert_resolve
from oversight.notifications.models import InboxItem
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, refund
from tests.monitoring.helpers import NOW, actions_at, history

pytestmark = pytest.mark.django_db


def burst(agent: Any, now: dt.datetime, n: int = 320) -> None:
    """A new agent's burst: above twice its no-baseline threshold of 150, so critical."""
    actions_at(agent, now - dt.timedelta(seconds=5), n)


def verbs_for(agent: Any) -> list[str]:
    return list(
        AuditEvent.objects.filter(agent_id=agent.pk).order_by("seq").values_list("verb", flat=True)
    )


def test_hold_makes_the_next_decision_pending_until_resolved(
    agent: Any, prod_token: Any, refunds: Any, owner: Any
) -> None:
    assert decide(prod_token, refund(100)).status == ActionStatus.ALLOWED
    now = timezone.now()
    burst(agent, now)
    monitoring_run(now=now)

    (alert,) = Alert.objects.filter(agent=agent)
    assert alert.severity == Severity.CRITICAL
    agent.refresh_from_db()
    assert agent.hold_all and f"Alert #{alert.pk}" in agent.hold_all_reason
    assert alert.evidence["response"] == "hold"
    held = decide(prod_token, refund(100))
    assert held.status == ActionStatus.PENDING
    assert any(r["kind"] == "alert" for r in held.reasons)

    alert_acknowledge(user=owner, alert_id=alert.pk, now=timezone.now())
    agent.refresh_from_db()
    assert agent.hold_all  # acknowledging is not resolving

    alert_resolve(user=owner, alert_id=alert.pk, now=timezone.now())
    agent.refresh_from_db()
    assert not agent.hold_all and agent.hold_all_reason == ""
    assert decide(prod_token, refund(100)).status == ActionStatus.ALLOWED
    verbs = verbs_for(agent)
    for verb in ("alert.opened", "agent.hold_set", "alert.acknowledged", "alert.resolved"):
        assert verb in verbs
    assert verbs.index("agent.hold_cleared") > verbs.index("alert.resolved")


def test_the_hold_stays_while_another_critical_alert_is_unresolved(agent: Any, owner: Any) -> None:
    now = timezone.now()
    burst(agent, now)
    monitoring_run(now=now)
    later = now + dt.timedelta(minutes=6)
    actions_at(agent, later - dt.timedelta(seconds=3), 40, decision=ActionStatus.DENIED)
    monitoring_run(now=later)
    volume, denials = Alert.objects.filter(agent=agent).order_by("opened_at")
    assert (volume.kind, denials.kind) == ("volume", "denial_rate")
    assert denials.severity == Severity.CRITICAL
    alert_resolve(user=owner, alert_id=volume.pk, now=later)
    agent.refresh_from_db()
    assert agent.hold_all
    alert_resolve(user=owner, alert_id=denials.pk, now=later)
    agent.refresh_from_db()
    assert not agent.hold_all


def test_pause_response_pauses_the_agent(agent: Any) -> None:
    agent_update(actor=SYSTEM, agent=agent, alert_response=AlertResponse.PAUSE)
    now = timezone.now()
    burst(agent, now)
    monitoring_run(now=now)
    agent.refresh_from_db()
    assert agent.status == AgentStatus.PAUSED and not agent.hold_all
    assert Alert.objects.get(agent=agent).evidence["response"] == "pause"


def test_no_response_only_tells_people(agent: Any) -> None:
    agent_update(actor=SYSTEM, agent=agent, alert_response=AlertResponse.NONE)
    now = timezone.now()
    burst(agent, now)
    monitoring_run(now=now)
    agent.refresh_from_db()
    assert agent.status == AgentStatus.ACTIVE and not agent.hold_all
    assert "response" not in Alert.objects.get(agent=agent).evidence


def test_a_warning_sets_off_no_response(agent: Any) -> None:
    now = timezone.now()
    burst(agent, now, n=200)
    monitoring_run(now=now)
    assert Alert.objects.get(agent=agent).severity == Severity.WARNING
    agent.refresh_from_db()
    assert not agent.hold_all


def test_reviewers_and_the_owner_are_told_once(agent: Any, rita: Any, owner: Any) -> None:
    now = timezone.now()
    burst(agent, now)
    monitoring_run(now=now)
    monitoring_run(now=now + dt.timedelta(seconds=30))
    alert = Alert.objects.get(agent=agent)
    items = InboxItem.objects.filter(kind="alert.opened").order_by("user__username")
    assert [i.user for i in items] == [owner, rita]
    for item in items:
        assert item.agent == agent
        assert item.link == f"/alerts/{alert.pk}/"
        assert "held for a human" in item.body
    assert alert.count == 2


def test_a_resolved_condition_is_not_raised_again_from_the_same_data(
    agent: Any, owner: Any
) -> None:
    history(agent)
    actions_at(agent, NOW - dt.timedelta(seconds=5), 520)
    monitoring_run(now=NOW)
    alert = Alert.objects.get(agent=agent)
    alert_resolve(user=owner, alert_id=alert.pk, now=NOW + dt.timedelta(seconds=10))
    monitoring_run(now=NOW + dt.timedelta(seconds=40))
    assert Alert.objects.filter(agent=agent).count() == 1
    # Past the window, the burst goes on: a new alert.
    later = NOW + dt.timedelta(minutes=6)
    actions_at(agent, later - dt.timedelta(seconds=5), 520)
    monitoring_run(now=later)
    assert Alert.objects.filter(agent=agent).count() == 2
    assert Alert.objects.filter(agent=agent, status=AlertStatus.OPEN).count() == 1


def test_acknowledge_and_resolve_refuse_wrong_states(agent: Any, owner: Any) -> None:
    from django.core.exceptions import ValidationError

    now = timezone.now()
    burst(agent, now, n=200)
    monitoring_run(now=now)
    alert = Alert.objects.get(agent=agent)
    alert_acknowledge(user=owner, alert_id=alert.pk, now=now)
    with pytest.raises(ValidationError):
        alert_acknowledge(user=owner, alert_id=alert.pk, now=now)
    alert_resolve(user=owner, alert_id=alert.pk, now=now)
    with pytest.raises(ValidationError):
        alert_resolve(user=owner, alert_id=alert.pk, now=now)
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.acknowledged_by) == ("resolved", owner, owner)


def test_escalation_to_critical_is_audited_and_holds(agent: Any) -> None:
    now = timezone.now()
    burst(agent, now, n=200)
    monitoring_run(now=now)
    burst(agent, now + dt.timedelta(seconds=20), n=200)
    monitoring_run(now=now + dt.timedelta(seconds=30))
    alert = Alert.objects.get(agent=agent)
    assert (alert.severity, alert.count) == (Severity.CRITICAL, 2)
    assert "alert.escalated" in verbs_for(agent)
    agent.refresh_from_db()
    assert agent.hold_all
