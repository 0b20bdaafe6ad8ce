"""What people are told by the review, ownership and retirement jobs: one function per
event, each naming its event so that repeating it tells nobody twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.urls import reverse
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.notifications.constants import Kind
from oversight.notifications.services import notify_people
from oversight.reviews.selectors import team_admins


def day(date: dt.date) -> str:
    """A date as pages show it: 6 Mar 2027."""
    return f"{date.day} {date:%b %Y}"


def _link(agent: Agent) -> str:
    return reverse("reviews:agent", args=[agent.slug])


def _tell(
    agent: Agent, users: Iterable[Any], *, kind: str, event: str, title: str, body: str
) -> None:
    notify_people(
        kind=kind,
        team=agent.team,
        users=users,
        title=title,
        body=body,
        link=_link(agent),
        event=event,
        agent=agent,
    )


def _admins_and_owner(agent: Agent) -> list[Any]:
    return [*team_admins(team=agent.team), agent.owner]


def review_due_soon(agent: Agent, *, days_left: int) -> None:
    due = agent.next_review_due
    _tell(
        agent,
        [agent.owner],
        kind=Kind.REVIEW_DUE,
        event=f"review.due:{agent.pk}:{due.isoformat()}:soon",
        title=f"Re-certification of {agent.name} due in {days_left} "
        f"day{'s' if days_left != 1 else ''}",
        body=f"{agent.name} must be re-certified by {day(due)}: check its purpose and "
        "its grants, and remove what it no longer uses.",
    )


def review_due_today(agent: Agent) -> None:
    _tell(
        agent,
        [agent.owner],
        kind=Kind.REVIEW_DUE,
        event=f"review.due:{agent.pk}:{agent.next_review_due.isoformat()}:today",
        title=f"Re-certification of {agent.name} due today",
        body=f"{agent.name} must be re-certified today.",
    )


def review_overdue(agent: Agent, *, pause_after: dt.date) -> None:
    _tell(
        agent,
        [agent.owner],
        kind=Kind.REVIEW_OVERDUE,
        event=f"review.overdue:{agent.pk}:{agent.next_review_due.isoformat()}",
        title=f"Re-certification of {agent.name} overdue",
        body=f"{agent.name} was due for re-certification on {day(agent.next_review_due)}. "
        + (
            f"It will be paused after {day(pause_after)} unless it is re-certified."
            if pause_after >= timezone.localdate()
            else "It is past its team's limit, so it is paused: re-certify it, then set it "
            "active on its Edit page."
        ),
    )


def review_escalated(agent: Agent, *, overdue_days: int) -> None:
    _tell(
        agent,
        _admins_and_owner(agent),
        kind=Kind.REVIEW_ESCALATED,
        event=f"review.escalated:{agent.pk}:{agent.next_review_due.isoformat()}",
        title=f"Re-certification of {agent.name} overdue by {overdue_days} days",
        body=f"{agent.name} has not been re-certified (due {day(agent.next_review_due)}). "
        f"Its owner, {agent.owner.get_username()}, re-certifies it or retires it; the team's "
        "admins follow up.",
    )


def paused_for_review(agent: Agent) -> None:
    _tell(
        agent,
        _admins_and_owner(agent),
        kind=Kind.AGENT_PAUSED,
        event=f"review.paused:{agent.pk}:{agent.next_review_due.isoformat()}",
        title=f"{agent.name} paused: re-certification overdue",
        body=f"{agent.name} was paused because its re-certification (due "
        f"{day(agent.next_review_due)}) is long overdue. Re-certify it, then set it active on "
        "its Edit page.",
    )


def agent_unowned(agent: Agent) -> None:
    assert agent.unowned_since is not None
    _tell(
        agent,
        team_admins(team=agent.team),
        kind=Kind.AGENT_UNOWNED,
        event=f"agent.unowned:{agent.pk}:{agent.unowned_since.isoformat()}",
        title=f"{agent.name} has no owner",
        body=f"The account of {agent.owner.get_username()}, who owns {agent.name}, was "
        f"deactivated. Give the agent a new owner within {agent.team.owner_grace_days} days "
        "or it will be paused.",
    )


def paused_unowned(agent: Agent) -> None:
    assert agent.unowned_since is not None
    _tell(
        agent,
        team_admins(team=agent.team),
        kind=Kind.AGENT_PAUSED,
        event=f"agent.unowned_paused:{agent.pk}:{agent.unowned_since.isoformat()}",
        title=f"{agent.name} paused: no owner",
        body=f"{agent.name} was paused: nobody took it over after its owner's account was "
        "deactivated.",
    )


def retirement_notice(agent: Agent, *, retire_after: dt.datetime) -> None:
    assert agent.retirement_notice_at is not None
    _tell(
        agent,
        [agent.owner],
        kind=Kind.AGENT_RETIREMENT_NOTICE,
        event=f"agent.retirement_notice:{agent.pk}:{agent.retirement_notice_at.isoformat()}",
        title=f"{agent.name} will be retired for inactivity",
        body=f"{agent.name} has not acted for a long time. It will be retired after "
        f"{day(retire_after)} unless it acts again or is re-certified.",
    )


def agent_retired(agent: Agent, *, reason: str) -> None:
    _tell(
        agent,
        _admins_and_owner(agent),
        kind=Kind.AGENT_RETIRED,
        event=f"agent.retired:{agent.pk}",
        title=f"{agent.name} retired",
        body=f"{agent.name} was retired: {reason.rstrip('.')}. Its tokens are revoked and "
        "its grants disabled; it stays in the registry, read-only, with its history.",
    )
