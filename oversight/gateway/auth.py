"""Bearer-token authentication of agents: a hashed lookup, one query.

Every decision starts here, so the one query also brings what the decision reads first:
the agent, its team and owner, and the id of an engaged kill switch that halts it.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model
from django.utils import timezone

from oversight.accounts.models import Team
from oversight.agents import tokens
from oversight.agents.constants import AgentStatus
from oversight.agents.models import Agent, AgentToken
from oversight.killswitch.models import KillSwitch, Scope
from oversight.lib import prepared

# last_used_at is written at most this often per token, not on every request.
_TOUCH_EVERY = dt.timedelta(seconds=60)


class AgentUnavailableError(Exception):
    """The token is valid but its agent may not act (paused or retired): HTTP 403."""


def _columns(model: type[Model], alias: str) -> list[str]:
    return [f'{alias}."{field.column}"' for field in model._meta.concrete_fields]


def _names(model: type[Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


@cache
def _query() -> tuple[str, tuple[int, int, int, int]]:
    """The SQL, and where each model's columns end in its rows (built once)."""
    user = get_user_model()
    parts = [
        _columns(AgentToken, "t"),
        _columns(Agent, "a"),
        _columns(Team, "tm"),
        _columns(user, "u"),
    ]
    ends, total = [], 0
    for part in parts:
        total += len(part)
        ends.append(total)
    # Only table and column names from the models are interpolated; values are parameters.
    switch = (
        f"SELECT ks.id FROM {KillSwitch._meta.db_table} ks WHERE ks.engaged = %s"  # noqa: S608
        " AND (ks.scope = %s OR ks.team_id = a.team_id"
        " OR ks.agent_id = a.id) ORDER BY ks.id LIMIT 1"
    )
    sql = (
        f"SELECT {', '.join(col for part in parts for col in part)}, ({switch})"  # noqa: S608
        f" FROM {AgentToken._meta.db_table} t"
        f" JOIN {Agent._meta.db_table} a ON a.id = t.agent_id"
        f" JOIN {Team._meta.db_table} tm ON tm.id = a.team_id"
        f" JOIN {user._meta.db_table} u ON u.id = a.owner_id"
        " WHERE t.token_hash = %s AND t.revoked_at IS NULL"
    )
    return sql, (ends[0], ends[1], ends[2], ends[3])


@cache
def _converters() -> list[tuple[int, list[Any], Any]]:
    """Per column, the database converters the ORM would apply (JSON, SQLite dates...)."""
    found = []
    fields = [
        field
        for model in (AgentToken, Agent, Team, get_user_model())
        for field in model._meta.concrete_fields
    ]
    for index, field in enumerate(fields):
        expression = field.get_col(field.model._meta.db_table)
        converters = connection.ops.get_db_converters(expression) + field.get_db_converters(
            connection
        )
        if converters:
            found.append((index, converters, expression))
    return found


def _converted(row: tuple[Any, ...]) -> list[Any]:
    values = list(row)
    for index, converters, expression in _converters():
        for converter in converters:
            values[index] = converter(values[index], expression, connection)
    return values


def _build(raw_row: tuple[Any, ...]) -> AgentToken:
    """Model instances from one row, related to each other as select_related would."""
    _, (t_end, a_end, tm_end, u_end) = _query()
    row = _converted(raw_row)
    db = connection.alias
    token = AgentToken.from_db(db, _names(AgentToken), row[:t_end])
    agent = Agent.from_db(db, _names(Agent), row[t_end:a_end])
    team = Team.from_db(db, _names(Team), row[a_end:tm_end])
    owner = get_user_model().from_db(db, _names(get_user_model()), row[tm_end:u_end])
    Agent.team.field.set_cached_value(agent, team)
    Agent.owner.field.set_cached_value(agent, owner)
    AgentToken.agent.field.set_cached_value(token, agent)
    token.engaged_switch_id = raw_row[u_end]
    return token


def token_authenticate(raw: str) -> AgentToken | None:
    """The active token with its agent, team and owner, or None (HTTP 401).

    The token also carries ``engaged_switch_id``: an engaged kill switch that halts its
    agent (global, its team's or its own), read in the same query, or None.
    Raises AgentUnavailableError when the agent is paused or retired.
    """
    if not raw or len(raw) > 200:
        return None
    sql, _ = _query()
    row = prepared.fetch_one(sql, [True, Scope.GLOBAL.value, tokens.token_hash(raw)])
    if row is None:
        return None
    token = _build(row)
    if token.agent.status != AgentStatus.ACTIVE:
        raise AgentUnavailableError(f"Agent {token.agent.slug} is {token.agent.status}.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        AgentToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
