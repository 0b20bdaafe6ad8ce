"""Time travel through ownership: a deactivated owner's agents are flagged, the team's admins
told, and the agents paused after the grace period unless someone takes them over."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.agents.services import agent_update
from oversight.audit.models import AuditEvent
from oversight.reviews.periodic import owners_check
from oversight.reviews.selectors import agents_unowned
from tests.conftest import SYSTEM
from tests.reviews.helpers import DAY, fresh, inbox

pytestmark = pytest.mark.django_db


def deactivate(user: Any) -> None:
    # A bulk update, as a directory sync would do it: no signals, no save().
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)


def test_agents_of_active_owners_are_left_alone(agent: Agent) -> None:
    assert owners_check() == {}
    assert fresh(agent).unowned_since is None


def test_a_deactivated_owner_s_agent_is_flagged_and_the_team_admins_told(
    agent: Agent, owner: Any, team_admin: Any, teammate: Any
) -> None:
    deactivate(owner)
    now = timezone.now()
    assert owners_check(now=now) == {"flagged": 1}
    assert owners_check(now=now + DAY) == {}
    flagged = fresh(agent)
    assert flagged.unowned_since == now
    assert flagged.status == "active"
    [item] = inbox(team_admin)
    assert (item.kind, item.link) == ("agent.unowned", "/recertification/refund-bot/")
    assert inbox(teammate) == []
    event = AuditEvent.objects.get(verb="agent.unowned_flagged")
    assert event.actor_label == "system:ownership"
    assert list(agents_unowned(user=team_admin)) == [flagged]
    assert list(agents_unowned(user=teammate)) == [flagged]


def test_the_agent_is_paused_after_the_grace_period(
    agent: Agent, owner: Any, team_admin: Any
) -> None:
    deactivate(owner)
    now = timezone.now()
    owners_check(now=now)
    assert owners_check(now=now + 7 * DAY) == {}
    assert fresh(agent).status == "active"
    assert owners_check(now=now + 7 * DAY + DAY) == {"paused": 1}
    assert fresh(agent).status == "paused"
    assert [i.kind for i in inbox(team_admin)] == ["agent.unowned", "agent.paused"]
    assert owners_check(now=now + 9 * DAY) == {}


def test_taking_the_agent_over_clears_the_flag_and_prevents_the_pause(
    agent: Agent, owner: Any, team_admin: Any
) -> None:
    deactivate(owner)
    now = timezone.now()
    owners_check(now=now)
    agent_update(actor=SYSTEM, agent=fresh(agent), owner=team_admin)
    taken = fresh(agent)
    assert taken.unowned_since is None
    update = AuditEvent.objects.filter(verb="agent.updated").latest("seq")
    assert update.after["unowned_since"] is None
    assert owners_check(now=now + 30 * DAY) == {}
    assert fresh(agent).status == "active"


def test_a_reactivated_owner_clears_the_flag(agent: Agent, owner: Any) -> None:
    deactivate(owner)
    owners_check()
    get_user_model().objects.filter(pk=owner.pk).update(is_active=True)
    assert owners_check() == {"cleared": 1}
    assert fresh(agent).unowned_since is None
    assert AuditEvent.objects.filter(verb="agent.unowned_cleared").count() == 1


def test_retired_agents_are_not_flagged(agent: Agent, owner: Any) -> None:
    agent_update(actor=SYSTEM, agent=agent, status="retired")
    deactivate(owner)
    assert owners_check() == {}


def test_the_grace_period_is_the_team_s(agent: Agent, owner: Any, team: Any) -> None:
    team.owner_grace_days = 0
    team.save()
    deactivate(owner)
    now = timezone.now()
    owners_check(now=now)
    assert owners_check(now=now + dt.timedelta(seconds=1)) == {"paused": 1}
