"""Reads: who is told about an event, and a team's channels and recent notifications."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from oversight.accounts import roles
from oversight.accounts.models import Team
from oversight.accounts.selectors import team_list
from oversight.agents.constants import AgentStatus
from oversight.agents.models import Agent
from oversight.agents.selectors import tool_change_named, tool_changes_now
from oversight.killswitch.models import KillSwitch
from oversight.notifications.constants import (
    MAX_ATTEMPTS,
    RECENT_NOTIFICATIONS,
    STALE_AFTER_SECONDS,
    Channel,
    Kind,
    State,
)
from oversight.notifications.models import InboxItem, Notification, TeamChannels
from oversight.notifications.since import items_since


def _users() -> QuerySet[Any]:
    return get_user_model().objects.filter(is_active=True).order_by("pk")


def _members_of(groups: QuerySet[Any]) -> QuerySet[Any]:
    """User ids in any of ``groups`` (a ``values("group_id")`` subquery)."""
    memberships = get_user_model().groups.through.objects
    return memberships.filter(group_id__in=groups).values("user_id")


def action_reviewers(*, agent: Agent) -> QuerySet[Any]:
    """Active people who may decide the agent's held actions when no rule narrows it:
    those with approve access on the agent (oversight/approvals/eligibility.py, the one
    answer to "who may approve"). Admins decide what is escalated to them, so they are
    told only when nobody else can be: otherwise every admin would hear of everything.
    """
    from oversight.approvals.eligibility import agent_approvers  # approvals -> agents

    holders = agent_approvers(agent=agent)
    if holders.exists():
        return holders
    admin_group = Group.objects.filter(name=roles.ADMIN).values("pk")
    return _users().filter(Q(is_superuser=True) | Q(pk__in=_members_of(admin_group)))


def agents_in_switch_scope(*, switch: KillSwitch) -> QuerySet[Agent]:
    """The agents a kill switch stops (retired ones have nobody left to tell)."""
    agents = Agent.objects.exclude(status=AgentStatus.RETIRED)
    if switch.agent_id is not None:
        agents = agents.filter(pk=switch.agent_id)
    elif switch.team_id is not None:
        agents = agents.filter(team_id=switch.team_id)
    return agents.select_related("owner", "team").order_by("team__name", "name")


def channels_by_team(*, team_ids: Any) -> dict[int, TeamChannels]:
    return {c.team_id: c for c in TeamChannels.objects.filter(team_id__in=team_ids)}


def team_for_channels(*, user: Any, slug: str) -> Team:
    """The team whose channels the user may manage: admins any team, owners their own.

    404 when the user is not in the team (nothing leaks about other teams); 403 for a
    member without the owner role, who may know the team but not change how it is told.
    """
    team = team_list(user=user).filter(slug=slug).first()
    if team is None:
        raise Http404("No such team.")
    if not roles.has_role(user, roles.OWNER):
        raise PermissionDenied("Only the team's owners and admins manage its notifications.")
    return team


def team_channels_get(*, team: Team) -> TeamChannels | None:
    return TeamChannels.objects.filter(team=team).first()


def team_notifications_recent(*, team: Team) -> QuerySet[Notification]:
    return Notification.objects.filter(team=team).select_related("agent")[:RECENT_NOTIFICATIONS]


def notifications_stale(*, limit: int = 500) -> list[int]:
    """Pending rows nobody holds, older than any retry would leave them: their task was
    lost (the broker was down at commit, or a worker died with it)."""
    now = timezone.now()
    return list(
        Notification.objects.filter(
            state=State.PENDING,
            attempts__lt=MAX_ATTEMPTS,
            created_at__lt=now - dt.timedelta(seconds=STALE_AFTER_SECONDS),
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- the in-app inbox ----------------------------------------------------------------


def inbox_items(*, user: Any) -> QuerySet[InboxItem]:
    """The person's own items, newest first; nobody else's, ever."""
    if not user.is_authenticated:
        return InboxItem.objects.none()
    return (
        InboxItem.objects.filter(user=user).select_related("agent").order_by("-created_at", "-id")
    )


def inbox_items_now(*, items: Iterable[InboxItem]) -> list[InboxItem]:
    """The items as the inbox shows them. An item records a moment and is not rewritten;
    one about a changed MCP tool also gets ``now``, what became of that change if it no
    longer waits for an owner (accepted since, by whom), else None; one about a held
    action or a rollout awaiting approval, what became of it (``since.items_since``).
    One query a page for each of these kinds."""
    items = list(items)
    changes: dict[int, tuple[int, str]] = {}
    for item in items:
        item.now = None
        named = tool_change_named(item.event) if item.kind == Kind.TOOL_CHANGED else None
        if named:
            changes[item.pk] = named
    if changes:
        now = tool_changes_now(changes=list(changes.values()))
        for item in items:
            if item.pk in changes:
                item.now = now.get(changes[item.pk])
    items_since(items)
    return items


def inbox_unread_count(*, user: Any) -> int:
    """One COUNT on the partial index of unread items (the nav badge, on every page)."""
    if not user.is_authenticated:
        return 0
    return InboxItem.objects.filter(user=user, read_at__isnull=True).count()


def outbox_emails(*, user: Any) -> QuerySet[Notification]:
    """The dev outbox: every email for admins, one's own (by address) for anyone else."""
    emails = Notification.objects.filter(channel=Channel.EMAIL).select_related("agent")
    if not roles.is_admin(user):
        address = (getattr(user, "email", "") or "").strip()
        emails = emails.filter(recipient__iexact=address) if address else emails.none()
    return emails.order_by("-created_at", "-id")
