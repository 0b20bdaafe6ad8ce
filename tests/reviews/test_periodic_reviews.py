"""Time travel through the review reminders: before, on the day, overdue, escalated, paused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from oversight.accounts.services import team_review_settings_update
from oversight.agents.models import Agent
from oversight.agents.services import agent_update
from oversight.audit.models import AuditEvent
from oversight.notifications.models import InboxItem
from oversight.notifications.services import team_channels_update
from oversight.reviews.periodic import reviews_remind
from oversight.reviews.services import review_recertify
from tests.conftest import SYSTEM
from tests.reviews.helpers import DAY, fresh, inbox, noon

pytestmark = pytest.mark.django_db

DUE = dt.date(2031, 3, 10)


@pytest.fixture
def due_agent(agent: Agent) -> Agent:
    Agent.objects.filter(pk=agent.pk).update(next_review_due=DUE)
    return fresh(agent)


def on(days_from_due: int) -> dt.datetime:
    return noon(DUE + days_from_due * DAY)


def test_nothing_happens_before_the_reminder_window(due_agent: Agent, owner: Any) -> None:
    assert reviews_remind(now=on(-8)) == {}
    assert inbox(owner) == []


def test_the_owner_is_reminded_once_before_the_due_date(due_agent: Agent, owner: Any) -> None:
    assert reviews_remind(now=on(-7)) == {"reminded": 1}
    reviews_remind(now=on(-7))
    reviews_remind(now=on(-3))
    [item] = inbox(owner)
    assert (item.kind, item.link) == ("review.due", "/recertification/refund-bot/")
    assert item.title == "Re-certification of Refund bot due in 7 days"


def test_the_owner_is_reminded_again_on_the_day(due_agent: Agent, owner: Any) -> None:
    reviews_remind(now=on(-7))
    reviews_remind(now=on(0))
    reviews_remind(now=on(0))
    titles = [item.title for item in inbox(owner, "review.due")]
    assert titles == [
        "Re-certification of Refund bot due in 7 days",
        "Re-certification of Refund bot due today",
    ]


def test_a_reminder_goes_by_email_when_the_team_has_email_on(
    due_agent: Agent,
    owner: Any,
    team: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    team_channels_update(actor=SYSTEM, team=team, email_enabled=True, webhook_url="")
    with django_capture_on_commit_callbacks(execute=True):
        reviews_remind(now=on(0))
    with django_capture_on_commit_callbacks(execute=True):
        reviews_remind(now=on(0))
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    assert "due today" in mailoutbox[0].subject


def test_once_overdue_the_owner_is_told_but_admins_not_yet(
    due_agent: Agent, owner: Any, team_admin: Any, admin_user: Any
) -> None:
    assert reviews_remind(now=on(1)) == {"overdue": 1}
    assert [i.kind for i in inbox(owner)] == ["review.overdue"]
    assert inbox(team_admin) == [] and inbox(admin_user) == []
    assert fresh(due_agent).status == "active"


def test_past_the_grace_period_the_team_admins_are_told(
    due_agent: Agent, owner: Any, teammate: Any, team_admin: Any, admin_user: Any
) -> None:
    reviews_remind(now=on(7))
    assert inbox(team_admin) == []
    assert reviews_remind(now=on(8)) == {"overdue": 1, "escalated": 1}
    reviews_remind(now=on(9))
    [item] = inbox(team_admin)
    assert item.kind == "review.escalated"
    assert "overdue by 8 days" in item.title
    assert [i.kind for i in inbox(owner, "review.escalated")] == ["review.escalated"]
    # Admins outside the team and plain teammates are not bothered.
    assert inbox(admin_user) == [] and inbox(teammate) == []


def test_a_team_without_admins_escalates_to_every_admin(due_agent: Agent, admin_user: Any) -> None:
    reviews_remind(now=on(8))
    assert [i.kind for i in inbox(admin_user)] == ["review.escalated"]


def test_past_the_hard_limit_the_agent_is_paused_once(
    due_agent: Agent, owner: Any, team_admin: Any
) -> None:
    assert fresh(due_agent).status == "active"
    reviews_remind(now=on(30))
    assert fresh(due_agent).status == "active"
    assert reviews_remind(now=on(31)) == {"overdue": 1, "escalated": 1, "paused": 1}
    assert fresh(due_agent).status == "paused"
    pause = AuditEvent.objects.get(verb="agent.updated", target_id=str(due_agent.pk))
    assert pause.actor_label == "system:reviews"
    assert (pause.before["status"], pause.after["status"]) == ("active", "paused")
    assert [i.kind for i in inbox(team_admin, "agent.paused")] == ["agent.paused"]
    # Both notices say what the re-certification page does: it stays paused until set
    # active (they said "paused until it is re-certified", and "resume it").
    told = {i.kind: i.body for i in InboxItem.objects.filter(user=owner)}
    assert told["agent.paused"].endswith("Re-certify it, then set it active on its Edit page.")
    assert "until it is re-certified" not in " ".join(told.values())

    events = AuditEvent.objects.count()
    assert reviews_remind(now=on(32)) == {"overdue": 1, "escalated": 1}
    assert AuditEvent.objects.count() == events
    assert len(inbox(owner, "agent.paused")) == 1


def test_the_periods_are_the_team_s_own(due_agent: Agent, team: Any, team_admin: Any) -> None:
    team_review_settings_update(
        actor=SYSTEM,
        team=team,
        review_reminder_days=2,
        review_grace_days=1,
        review_pause_after_days=3,
    )
    assert reviews_remind(now=on(-3)) == {}
    assert reviews_remind(now=on(-2)) == {"reminded": 1}
    assert reviews_remind(now=on(2)) == {"overdue": 1, "escalated": 1}
    assert reviews_remind(now=on(4)) == {"overdue": 1, "escalated": 1, "paused": 1}


def test_a_recertified_agent_is_left_alone(due_agent: Agent, owner: Any) -> None:
    review_recertify(actor=SYSTEM, user=owner, agent=due_agent, purpose_confirmed=True, now=on(-1))
    assert fresh(due_agent).next_review_due == DUE - DAY + 90 * DAY
    assert reviews_remind(now=on(40)) == {}
    assert fresh(due_agent).status == "active"


def test_retired_agents_are_left_alone(due_agent: Agent, owner: Any) -> None:
    agent_update(actor=SYSTEM, agent=due_agent, status="retired")
    assert reviews_remind(now=on(40)) == {}
    assert inbox(owner) == []
