"""The periodic jobs of reviews, ownership and retirement, as services.

Each takes ``now`` (tests travel in time through it), looks at every agent still in
service, and only does what is due and not yet done: running one twice, or in two
workers at once, changes nothing the second time. Each agent is handled in its own
transaction, its row locked and its state read again, so one failure spoils no other.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from oversight.accounts.models import Team
from oversight.agents.constants import AgentStatus
from oversight.agents.locking import agent_lock
from oversight.agents.models import Agent
from oversight.agents.services import agent_update
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.reviews import notices
from oversight.reviews.selectors import agents_with_last_activity
from oversight.reviews.services import agent_retire

logger = logging.getLogger(__name__)

REVIEWS = Actor.system("reviews")
OWNERSHIP = Actor.system("ownership")
RETIREMENT = Actor.system("retirement")


def _in_service() -> QuerySet[Agent]:
    return Agent.objects.exclude(status=AgentStatus.RETIRED).select_related("owner", "team")


def _lock(agent: Agent) -> Agent | None:
    """The agent's row locked for this transaction; None once it was retired meanwhile."""
    locked = agent_lock(agent.pk)
    return None if locked.status == AgentStatus.RETIRED else locked


# Reviews -------------------------------------------------------------------------------


def reviews_remind(*, now: dt.datetime | None = None) -> Counter[str]:
    """Remind owners before a review is due and on the day; tell them once it is overdue;
    escalate to the team's admins past the team's grace period; pause past its hard limit."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    horizon = Team.objects.aggregate(days=Max("review_reminder_days"))["days"] or 0
    done: Counter[str] = Counter()
    due_soon = _in_service().filter(next_review_due__lte=today + dt.timedelta(days=horizon))
    for agent in due_soon.order_by("next_review_due", "pk"):
        done.update(_remind_one(agent, today=today))
    return done


@transaction.atomic
def _remind_one(agent: Agent, *, today: dt.date) -> list[str]:
    locked = _lock(agent)
    if locked is None:
        return []
    team, due = locked.team, locked.next_review_due
    days_left = (due - today).days
    if days_left > 0:
        if days_left <= team.review_reminder_days:
            notices.review_due_soon(locked, days_left=days_left)
            return ["reminded"]
        return []
    if days_left == 0:
        notices.review_due_today(locked)
        return ["reminded"]
    overdue = -days_left
    notices.review_overdue(
        locked, pause_after=due + dt.timedelta(days=team.review_pause_after_days)
    )
    done = ["overdue"]
    if overdue > team.review_grace_days:
        notices.review_escalated(locked, overdue_days=overdue)
        done.append("escalated")
    if locked.paused_for_review(today) and locked.status == AgentStatus.ACTIVE:
        agent_update(actor=REVIEWS, agent=locked, status=AgentStatus.PAUSED)
        notices.paused_for_review(locked)
        done.append("paused")
    return done


# Ownership -----------------------------------------------------------------------------


def owners_check(*, now: dt.datetime | None = None) -> Counter[str]:
    """Flag agents whose owner's account is deactivated (however that happened) and tell the
    team's admins; clear the flag if the account comes back; pause the agents nobody took
    over within the team's grace period."""
    now = now or timezone.now()
    done: Counter[str] = Counter()
    agents = _in_service()
    for agent in agents.filter(owner__is_active=False, unowned_since__isnull=True):
        done.update(_flag_unowned(agent, now=now))
    for agent in agents.filter(owner__is_active=True, unowned_since__isnull=False):
        done.update(_clear_unowned(agent))
    unowned = agents.filter(
        owner__is_active=False, unowned_since__isnull=False, status=AgentStatus.ACTIVE
    )
    for agent in unowned:
        if now - agent.unowned_since > dt.timedelta(days=agent.team.owner_grace_days):
            done.update(_pause_unowned(agent))
    return done


def _audit_flag(agent: Agent, verb: str, field: str, before: object, after: object) -> None:
    def iso(value: object) -> object:
        return value.isoformat() if isinstance(value, dt.datetime) else value

    audit_record(
        actor=OWNERSHIP if field == "unowned_since" else RETIREMENT,
        verb=verb,
        target=agent,
        before={field: iso(before)},
        after={field: iso(after)},
    )


@transaction.atomic
def _flag_unowned(agent: Agent, *, now: dt.datetime) -> list[str]:
    locked = _lock(agent)
    if locked is None or locked.owner.is_active or locked.unowned_since is not None:
        return []
    locked.unowned_since = now
    locked.save(update_fields=["unowned_since"])
    _audit_flag(locked, verbs.AGENT_UNOWNED_FLAGGED, "unowned_since", None, now)
    notices.agent_unowned(locked)
    return ["flagged"]


@transaction.atomic
def _clear_unowned(agent: Agent) -> list[str]:
    locked = _lock(agent)
    if locked is None or not locked.owner.is_active or locked.unowned_since is None:
        return []
    before, locked.unowned_since = locked.unowned_since, None
    locked.save(update_fields=["unowned_since"])
    _audit_flag(locked, verbs.AGENT_UNOWNED_CLEARED, "unowned_since", before, None)
    return ["cleared"]


@transaction.atomic
def _pause_unowned(agent: Agent) -> list[str]:
    locked = _lock(agent)
    if (
        locked is None
        or locked.owner.is_active
        or locked.unowned_since is None
        or locked.status != AgentStatus.ACTIVE
    ):
        return []
    paused = agent_update(actor=OWNERSHIP, agent=locked, status=AgentStatus.PAUSED)
    notices.paused_unowned(paused)
    return ["paused"]


# Retirement for inactivity -------------------------------------------------------------


def _last_activity(agent: Agent) -> dt.datetime:
    """Its latest action (or registration), or its latest re-certification if later."""
    last = agent.last_activity  # type: ignore[attr-defined]
    if agent.last_reviewed_at and agent.last_reviewed_at > last:
        return agent.last_reviewed_at
    return last


def agents_retire_inactive(*, now: dt.datetime | None = None) -> Counter[str]:
    """Give notice to the owners of agents idle for the team's inactivity period less its
    notice period; withdraw the notice once the agent acts again; retire the agents still
    idle once the full period and the notice period have both passed."""
    now = now or timezone.now()
    done: Counter[str] = Counter()
    for agent in agents_with_last_activity().order_by("pk"):
        team = agent.team
        idle = now - _last_activity(agent)
        notice = dt.timedelta(days=team.retirement_notice_days)
        limit = dt.timedelta(days=team.inactivity_retire_days)
        if agent.retirement_notice_at is None:
            if idle >= limit - notice:
                done.update(_give_notice(agent, now=now, retire_after=now + notice))
        elif _last_activity(agent) > agent.retirement_notice_at:
            done.update(_withdraw_notice(agent))
        elif idle >= limit and now - agent.retirement_notice_at >= notice:
            done.update(_retire_idle(agent, idle_days=idle.days, now=now))
    return done


@transaction.atomic
def _give_notice(agent: Agent, *, now: dt.datetime, retire_after: dt.datetime) -> list[str]:
    locked = _lock(agent)
    if locked is None or locked.retirement_notice_at is not None:
        return []
    locked.retirement_notice_at = now
    locked.save(update_fields=["retirement_notice_at"])
    _audit_flag(locked, verbs.AGENT_RETIREMENT_NOTICE_GIVEN, "retirement_notice_at", None, now)
    notices.retirement_notice(locked, retire_after=retire_after)
    return ["noticed"]


@transaction.atomic
def _withdraw_notice(agent: Agent) -> list[str]:
    locked = _lock(agent)
    if locked is None or locked.retirement_notice_at is None:
        return []
    before, locked.retirement_notice_at = locked.retirement_notice_at, None
    locked.save(update_fields=["retirement_notice_at"])
    _audit_flag(
        locked, verbs.AGENT_RETIREMENT_NOTICE_WITHDRAWN, "retirement_notice_at", before, None
    )
    return ["withdrawn"]


def _retire_idle(agent: Agent, *, idle_days: int, now: dt.datetime) -> list[str]:
    try:
        return _retire_idle_locked(agent, idle_days=idle_days, now=now)
    except Exception:  # one agent's failure must not stop the others'
        logger.exception("could not retire idle agent %s", agent.slug)
        return ["failed"]


@transaction.atomic
def _retire_idle_locked(agent: Agent, *, idle_days: int, now: dt.datetime) -> list[str]:
    locked = _lock(agent)
    if locked is None or locked.retirement_notice_at is None:
        return []
    # Read again under the lock: an action since the notice means it is in use after all.
    if locked.actions.filter(created_at__gt=locked.retirement_notice_at).exists():
        return []
    reason = f"no activity for {idle_days} days, after notice to the owner."
    retired = agent_retire(actor=RETIREMENT, agent=locked, reason=reason, now=now)
    return ["retired"] if retired else []
