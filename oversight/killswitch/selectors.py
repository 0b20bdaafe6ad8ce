"""Which kill switch, if any, halts an agent; and naming switch targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q

from oversight.accounts import roles
from oversight.accounts.models import Team
from oversight.agents.constants import CHANGE, AgentStatus
from oversight.agents.models import Agent
from oversight.killswitch.models import KillSwitch, Scope


@dataclass(frozen=True)
class Target:
    scope: str
    team: Team | None = None
    agent: Agent | None = None

    @property
    def label(self) -> str:
        """By slug, as the command line names it."""
        if self.agent:
            return f"agent {self.agent.slug}"
        if self.team:
            return f"team {self.team.slug}"
        return "everything"

    @property
    def display_name(self) -> str:
        """By name, as the banner says it ("agent Deploy bot")."""
        if self.agent:
            return f"agent {self.agent.name}"
        if self.team:
            return f"team {self.team.name}"
        return "everything"


def parse_target(text: str) -> Target:
    """``global``, ``team:NAME`` (the team's name or its slug, in any case) or
    ``agent:SLUG``."""
    kind, _, name = text.partition(":")
    if kind == Scope.GLOBAL and not name:
        return Target(Scope.GLOBAL)
    if kind == Scope.TEAM and name:
        team = (
            Team.objects.filter(slug__iexact=name).first()
            or Team.objects.filter(name__iexact=name).first()
        )
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


@dataclass(frozen=True)
class Offer:
    """One scope the kill-switch menu offers: its form value, the words on its button
    ("Stop team payments"), and whether it is engaged (then the button releases it)."""

    scope: str
    name: str
    engaged: bool


def _value(target: Target) -> str:
    if target.agent is not None:
        return f"{Scope.AGENT}:{target.agent.slug}"
    if target.team is not None:
        return f"{Scope.TEAM}:{target.team.slug}"
    return Scope.GLOBAL


def _name(target: Target) -> str:
    if target.agent is not None:
        return target.agent.name
    if target.team is not None:
        return f"team {target.team.name}"
    return "every agent"


def _target_of(switch: KillSwitch) -> Target:
    return Target(switch.scope, team=switch.team, agent=switch.agent)


def menu_offers(
    *,
    user: Any,
    engaged: list[KillSwitch],
    agent: Agent | None = None,
    team: Team | None = None,
) -> list[Offer]:
    """What the menu offers on a page about ``agent`` or ``team``: the page's agent, its
    team and everything, narrowest first, then every other engaged switch (to release),
    each only if the person may press it. ``engaged``: the engaged switches the person
    sees (the context processor's), so that only the permission checks query."""
    from oversight.killswitch.permissions import can_press  # it imports this module

    targets: list[Target] = []
    if agent is not None and agent.status != AgentStatus.RETIRED:
        targets.append(Target(Scope.AGENT, agent=agent))
    page_team = team or (agent.team if agent is not None else None)
    if page_team is not None:
        targets.append(Target(Scope.TEAM, team=page_team))
    targets.append(Target(Scope.GLOBAL))
    targets += [_target_of(s) for s in engaged]
    on = {_value(_target_of(s)) for s in engaged}
    offers: list[Offer] = []
    for target in targets:
        value = _value(target)
        if any(o.scope == value for o in offers) or not can_press(user, target):
            continue
        offers.append(Offer(value, _name(target), value in on))
    return offers


def pressable_scopes(*, user: Any) -> list[tuple[str, str]]:
    """(value, label) of every scope the person may press, for the menu's "another agent
    or team" list: everything (admins), teams (admins; owners in the team), agents the
    person may change. Loaded only when the menu opens: for an admin it lists them all."""
    from oversight.agents.selectors import agents_with_perm

    admin = roles.is_admin(user)
    if admin:
        teams = Team.objects.all()
    elif roles.has_role(user, roles.OWNER):
        teams = Team.objects.filter(group__user=user)
    else:
        teams = Team.objects.none()
    agents = agents_with_perm(user=user, perm=CHANGE).exclude(status=AgentStatus.RETIRED)
    scopes = [(Scope.GLOBAL.value, "Every agent")] if admin else []
    scopes += [(f"team:{slug}", f"Team {name}") for slug, name in teams.values_list("slug", "name")]
    scopes += [
        (f"agent:{slug}", f"{name} ({slug})")
        for slug, name in agents.order_by("name").values_list("slug", "name")
    ]
    return scopes
