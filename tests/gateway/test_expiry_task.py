"""The beat job that expires held actions nobody decided."""

from __future__ import annotations

import pytest

from oversight.audit.models import AuditEvent
from oversight.celery import app
from oversight.gateway.models import Action
from oversight.gateway.tasks import expire_due_actions
from tests.gateway.helpers import AgentApi, RefundPolicy, expire, refund

pytestmark = pytest.mark.django_db


def test_it_expires_only_what_is_due(api: AgentApi, policy: RefundPolicy) -> None:
    due = api.decide(refund(900))
    later = api.decide(refund(901, charges=("ch_2",)))
    expire(Action.objects.get(pk=due["id"]))

    assert expire_due_actions.apply().get() == 1
    assert Action.objects.get(pk=due["id"]).status == "expired"
    assert Action.objects.get(pk=later["id"]).status == "pending"
    assert (
        AuditEvent.objects.filter(verb="action.expired", actor_label="system:expiry").count() == 1
    )


def test_running_it_again_changes_nothing(api: AgentApi, policy: RefundPolicy) -> None:
    expire(Action.objects.get(pk=api.decide(refund(900))["id"]))
    expire_due_actions.apply().get()
    assert expire_due_actions.apply().get() == 0
    assert AuditEvent.objects.filter(verb="action.expired").count() == 1


def test_it_is_on_the_beat_schedule() -> None:
    entry = app.conf.beat_schedule["gateway-expire-held-actions"]
    assert entry["task"] == expire_due_actions.name
    assert entry["schedule"] <= 60
