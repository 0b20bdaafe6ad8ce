"""Time travel through retirement for inactivity: notice first, then retirement, unless the
agent acts again."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.audit.models import AuditEvent
from oversight.reviews.periodic import agents_retire_inactive
from oversight.reviews.services import review_recertify
from tests.conftest import SYSTEM
from tests.reviews.helpers import DAY, act, fresh, grant, inbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def start(agent: Agent) -> Any:
    return fresh(agent).created_at


def test_an_active_agent_is_left_alone(agent: Agent, start: Any) -> None:
    act(agent, at=start + 70 * DAY)
    assert agents_retire_inactive(now=start + 100 * DAY) == {}


def test_an_idle_agent_gets_notice_then_is_retired(
    agent: Agent, owner: Any, team_admin: Any, start: Any
) -> None:
    refunds = grant(agent, "payments.refund")
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="staging")

    assert agents_retire_inactive(now=start + 75 * DAY) == {}
    notice_at = start + 76 * DAY
    assert agents_retire_inactive(now=notice_at) == {"noticed": 1}
    assert agents_retire_inactive(now=notice_at + DAY) == {}
    assert fresh(agent).retirement_notice_at == notice_at
    [notice] = inbox(owner)
    assert notice.kind == "agent.retirement_notice"
    assert AuditEvent.objects.filter(verb="agent.retirement_notice_given").count() == 1

    # 90 days idle, but 14 days of notice have not passed yet.
    assert agents_retire_inactive(now=start + 89 * DAY) == {}
    assert fresh(agent).status == "active"
    assert agents_retire_inactive(now=notice_at + 14 * DAY) == {"retired": 1}

    retired = fresh(agent)
    assert retired.status == "retired" and retired.retired_at is not None
    token.refresh_from_db()
    refunds.refresh_from_db()
    assert token.revoked_at is not None
    assert refunds.expires_at == notice_at + 14 * DAY
    event = AuditEvent.objects.get(verb="agent.retired")
    assert event.actor_label == "system:retirement"
    assert "no activity for 90 days" in event.after["reason"]
    assert [i.kind for i in inbox(owner)] == ["agent.retirement_notice", "agent.retired"]
    assert [i.kind for i in inbox(team_admin)] == ["agent.retired"]
    assert agents_retire_inactive(now=notice_at + 30 * DAY) == {}


def test_activity_after_the_notice_withdraws_it(agent: Agent, start: Any) -> None:
    agents_retire_inactive(now=start + 80 * DAY)
    act(agent, at=start + 85 * DAY)
    assert agents_retire_inactive(now=start + 95 * DAY) == {"withdrawn": 1}
    assert fresh(agent).retirement_notice_at is None
    assert agents_retire_inactive(now=start + 120 * DAY) == {}
    assert fresh(agent).status == "active"
    # Idle again for long enough: a new notice.
    assert agents_retire_inactive(now=start + 85 * DAY + 76 * DAY) == {"noticed": 1}


def test_a_recertification_counts_as_activity(agent: Agent, owner: Any, start: Any) -> None:
    agents_retire_inactive(now=start + 80 * DAY)
    review_recertify(
        actor=SYSTEM, user=owner, agent=fresh(agent), purpose_confirmed=True, now=start + 81 * DAY
    )
    assert fresh(agent).retirement_notice_at is None
    assert agents_retire_inactive(now=start + 120 * DAY) == {}
    assert fresh(agent).status == "active"


def test_the_periods_are_the_team_s(agent: Agent, team: Any, start: Any) -> None:
    team.inactivity_retire_days, team.retirement_notice_days = 10, 3
    team.save()
    assert agents_retire_inactive(now=start + 6 * DAY) == {}
    assert agents_retire_inactive(now=start + 7 * DAY) == {"noticed": 1}
    assert agents_retire_inactive(now=start + 9 * DAY) == {}
    assert agents_retire_inactive(now=start + 10 * DAY) == {"retired": 1}


def test_runs_with_the_real_clock_leave_new_agents_alone(agent: Agent) -> None:
    assert agents_retire_inactive() == {}
    assert agents_retire_inactive(now=timezone.now()) == {}
