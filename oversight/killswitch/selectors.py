"""Which kill switch, if any, halts an agent; and naming switch targets."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
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


def halting_switch(*, agent_id: int, team_id: int) -> KillSwitch | None:
    """The engaged switch that halts this agent, broadest first; one indexed query."""
    return (
        KillSwitch.objects.filter(engaged=True)
        .filter(Q(scope=Scope.GLOBAL) | Q(team_id=team_id) | Q(agent_id=agent_id))
        .order_by("scope")  # "agent" < "global" < "team": any order is fine, one is enough
        .first()
    )
