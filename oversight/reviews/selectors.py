"""Reads for reviews, ownership and retirement, filtered in the database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from oversight.accounts import roles
from oversight.accounts.models import Team
from oversight.accounts.selectors import team_list
from oversight.agents.constants import CHANGE, AgentStatus
from oversight.agents.models import Agent
from oversight.agents.permissions import user_has_agent_perm
from oversight.agents.selectors import agents_with_perm
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.monitoring.models import Alert
from oversight.policy.models import Grant
from oversight.reviews.constants import DENIAL_RATE_DAYS, UNUSED_AFTER_DAYS
from oversight.reviews.models import Review


def reviews_overdue(*, user: Any, today: dt.date | None = None) -> QuerySet[Agent]:
    """Agents the user may view whose review is overdue, not retired; most overdue first."""
    today = today or timezone.localdate()
    return (
        agents_with_perm(user=user)
        .exclude(status=AgentStatus.RETIRED)
        .filter(next_review_due__lt=today)
        .select_related("owner", "team")
        .order_by("next_review_due", "name")
    )


def agents_unowned(*, user: Any) -> QuerySet[Agent]:
    """Agents the user may view whose owner's account was deactivated, not retired."""
    return (
        agents_with_perm(user=user)
        .exclude(status=AgentStatus.RETIRED)
        .filter(unowned_since__isnull=False)
        .select_related("owner", "team")
        .order_by("unowned_since", "name")
    )


def reviews_list(*, user: Any) -> QuerySet[Agent]:
    """Every agent the user may view that is still in service, the soonest review first."""
    return (
        agents_with_perm(user=user)
        .exclude(status=AgentStatus.RETIRED)
        .select_related("owner", "team")
        .order_by("next_review_due", "name")
    )


def can_review(user: Any, agent: Agent) -> bool:
    """The owner, a team admin or an admin (all hold change on the agent); never once retired."""
    return user_has_agent_perm(user, CHANGE, agent)


def team_admins(*, team: Team) -> list[Any]:
    """Who hears about a team's escalations: its members who are admins; when it has none,
    every admin (superusers included). Active accounts only."""
    users = get_user_model().objects.filter(is_active=True)
    admins = users.filter(Q(is_superuser=True) | Q(groups__name=roles.ADMIN)).distinct()
    in_team = list(admins.filter(pk__in=team.members.values("pk")).order_by("username"))
    return in_team or list(admins.order_by("username"))


def review_open(*, agent: Agent) -> Review | None:
    return Review.objects.filter(agent=agent, completed_at__isnull=True).first()


def review_history(*, agent: Agent) -> QuerySet[Review]:
    return (
        Review.objects.filter(agent=agent, completed_at__isnull=False)
        .select_related("reviewed_by")
        .order_by("-completed_at")
    )


# What "used" counts: the actions a grant let run (allowed, or held and approved; in
# staging, allowed as a dry run), not those held and then rejected, expired, cancelled or
# still waiting.
USED = (
    ActionStatus.ALLOWED,
    ActionStatus.DRY_RUN,
    ActionStatus.APPROVED,
    ActionStatus.SUCCEEDED,
    ActionStatus.FAILED,
    ActionStatus.ROLLED_BACK,
)
_USED_IN = "a.status IN (" + ", ".join(["%s"] * len(USED)) + ")"

# One grouped query per database: the actions of the agent since a date that a grant let
# run, one row per grant named among their reasons, counting each window.
_USAGE_SQL = {
    "postgresql": """
        SELECT (r.reason->>'id')::bigint AS grant_id,
               COUNT(*) FILTER (WHERE a.created_at >= %s) AS recent,
               COUNT(*) AS total
          FROM gateway_action a, jsonb_array_elements(a.reasons) AS r(reason)
         WHERE a.agent_id = %s AND a.created_at >= %s AND {used}
           AND jsonb_typeof(a.reasons) = 'array'
           AND r.reason @> '{"kind": "grant"}'
         GROUP BY 1
    """,
    "sqlite": """
        SELECT CAST(json_extract(reason.value, '$.id') AS INTEGER) AS grant_id,
               SUM(CASE WHEN a.created_at >= %s THEN 1 ELSE 0 END) AS recent,
               COUNT(*) AS total
          FROM gateway_action a, json_each(a.reasons) AS reason
         WHERE a.agent_id = %s AND a.created_at >= %s AND {used}
           AND json_extract(reason.value, '$.kind') = 'grant'
         GROUP BY 1
    """,
}


# The statuses' placeholders, put in once (str.format would read the JSON's braces).
_USAGE_SQL = {vendor: sql.replace("{used}", _USED_IN) for vendor, sql in _USAGE_SQL.items()}


def grant_usage(
    *, agent: Agent, now: dt.datetime, recent_days: int = 30, total_days: int = UNUSED_AFTER_DAYS
) -> dict[int, tuple[int, int]]:
    """{grant id: (uses in the last ``recent_days``, uses in the last ``total_days``)}.

    An action uses a grant when its recorded reasons name it (the grants that allowed it)
    and the grant let it run (``USED``).
    """
    sql = _USAGE_SQL.get(connection.vendor)
    if sql is None:
        raise NotImplementedError(f"grant usage on {connection.vendor}")
    recent_since = now - dt.timedelta(days=recent_days)
    total_since = now - dt.timedelta(days=total_days)
    if connection.vendor == "sqlite":
        # Django stores SQLite datetimes as naive UTC text; compare like with like.
        recent_since, total_since = (
            timezone.make_naive(d, dt.UTC).isoformat(sep=" ") for d in (recent_since, total_since)
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [recent_since, agent.pk, total_since, *USED])
        return {int(gid): (int(recent), int(total)) for gid, recent, total in cursor.fetchall()}


@dataclass(frozen=True)
class GrantRow:
    grant: Grant
    uses_30d: int
    uses_90d: int
    expired: bool
    young: bool = False  # granted less than UNUSED_AFTER_DAYS ago: too soon to tell
    undoes: str = ""  # the action whose undo it is (another grant's undo_action)

    @property
    def unused(self) -> bool:
        """Not used in UNUSED_AFTER_DAYS, though it had them, and no undo needs it."""
        return self.uses_90d == 0 and not self.young and not self.undoes


def grant_rows(*, agent: Agent, now: dt.datetime) -> list[GrantRow]:
    usage = grant_usage(agent=agent, now=now)
    grants = list(Grant.objects.filter(agent=agent).order_by("action", "resource"))
    undoes = {g.undo_action: g.action for g in grants if g.undo_action}
    granted_before = now - dt.timedelta(days=UNUSED_AFTER_DAYS)
    return [
        GrantRow(
            grant=grant,
            uses_30d=usage.get(grant.pk, (0, 0))[0],
            uses_90d=usage.get(grant.pk, (0, 0))[1],
            expired=grant.expires_at is not None and grant.expires_at <= now,
            young=grant.created_at > granted_before,
            undoes=undoes.get(grant.action, ""),
        )
        for grant in grants
    ]


@dataclass(frozen=True)
class DenialRate:
    total: int
    denied: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.denied / self.total, 1) if self.total else None


def denial_rate(*, agent: Agent, now: dt.datetime, days: int = DENIAL_RATE_DAYS) -> DenialRate:
    counts = Action.objects.filter(
        agent=agent, created_at__gte=now - dt.timedelta(days=days)
    ).aggregate(total=Count("pk"), denied=Count("pk", filter=Q(status=ActionStatus.DENIED)))
    return DenialRate(total=counts["total"], denied=counts["denied"])


def recent_alerts(
    *, agent: Agent, now: dt.datetime, days: int = 90, limit: int = 10
) -> list[Alert]:
    """The agent's alerts opened in the last ``days``, newest first (monitoring's model)."""
    return list(
        Alert.objects.filter(agent=agent, opened_at__gte=now - dt.timedelta(days=days)).order_by(
            "-opened_at"
        )[:limit]
    )


def agents_with_last_activity() -> QuerySet[Agent]:
    """Agents still in service, each with ``last_activity``: its latest action, or its
    registration when it never acted."""
    # One index lookup per agent (action_agent_recent), not a scan of every action.
    latest = (
        Action.objects.filter(agent=OuterRef("pk")).order_by("-created_at").values("created_at")
    )
    return (
        Agent.objects.exclude(status=AgentStatus.RETIRED)
        .annotate(last_activity=Coalesce(Subquery(latest[:1]), "created_at"))
        .select_related("owner", "team")
    )


def team_for_review_settings(*, user: Any, slug: str) -> Team:
    """The team, for a user who may see it (admins: any; others: their own), else 404."""
    team = team_list(user=user).filter(slug=slug).first()
    if team is None:
        raise Http404("No such team.")
    return team
