"""Which kill switch, if any, halts an agent; and naming switch targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q

from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.killswitch.models import KillSwitch, Scope


@dataclass(frozen=True)
class Target:
    scope: str
    team: Team | None = None
    agent: Agent | None = None

    @property
    def label(self) -> str:
        if self.agent:
            return f"agent {self.agent.slug}"
        if self.team:
            return f"team {self.team.slug}"
        return "everything"


def parse_target(text: str) -> Target:
    """``global``, ``team:SLUG`` or ``agent:SLUG``."""
    kind, _, name = text.partition(":")
    if kind == Scope.GLOBAL and not name:
        return Target(Scope.GLOBAL)
    if kind == Scope.TEAM and name:
        team = Team.objects.filter(slug=name).first()
        if team is None:
            raise ValidationError(f"No team {name!r}.")
        return Target(Scope.TEAM, team=team)
    if kind == Scope.AGENT and name:
        agent = Agent.objects.filter(slug=name).first()
        if agent is None:
            raise ValidationError(f"No agent {name!r}.")
        return Target(Scope.AGENT, agent=agent)
    raise ValidationError(f"{text!r} is not a scope: use global, team:NAME or agent:SLUG.")


def halting_switch_id(*, agent_id: int) -> int | None:
    """The id of the engaged switch that halts this agent, or None: the same rule the
    decision path reads with the agent's credentials (gateway/credentials_sql.py)."""
    from oversight.gateway import credentials_sql

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {credentials_sql.switch()} FROM {Agent._meta.db_table} a WHERE a.id = %s",  # noqa: S608
            [agent_id],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def halting_switch(*, agent_id: int) -> KillSwitch | None:
    """The engaged switch that halts this agent, if any."""
    switch_id = halting_switch_id(agent_id=agent_id)
    if switch_id is None:
        return None
    return KillSwitch.objects.select_related("team", "agent").filter(pk=switch_id).first()


def engaged_switches_for(*, user: Any) -> list[KillSwitch]:
    """Engaged switches a person should see: global, and those covering agents they view."""
    from oversight.agents.selectors import agents_with_perm

    if not getattr(user, "is_authenticated", False):
        return []
    visible = agents_with_perm(user=user)
    return list(
        KillSwitch.objects.filter(engaged=True)
        .filter(
            Q(scope=Scope.GLOBAL) | Q(agent__in=visible) | Q(team__in=visible.values("team_id"))
        )
        .select_related("team", "agent")
        .order_by("changed_at")
    )


def switch_for(target: Target) -> KillSwitch | None:
    return KillSwitch.objects.filter(
        scope=target.scope, team=target.team, agent=target.agent
    ).first()
