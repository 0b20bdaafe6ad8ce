"""Bearer-token authentication of agents: a hashed lookup, one query.

Every decision starts here, so the one query also brings what the decision reads first:
the agent, its team and owner, the id of an engaged kill switch that halts it, and on
PostgreSQL the fingerprint of all that (credentials_sql.py).

The decision fast lane keeps what it authenticated (``keep=True``) and recalls it on the
token's next request (``token_recall``) without a query. That is safe because a recalled
token is only used for a decision that ``decision_record`` writes, and it writes nothing
unless the fingerprint still matches the database: a revoked token, a paused or edited
agent, a kill switch engaged since, any change at all, and the fast lane authenticates
again (services.StaleCredentialsError).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
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
from oversight.gateway import credentials_sql
from oversight.lib import prepared

# last_used_at is written at most this often per token, not on every request; a token is
# recalled only while its last_used_at is that recent, so it is authenticated (and
# touched) again at least that often.
_TOUCH_EVERY = dt.timedelta(seconds=60)

# Tokens kept for token_recall, by hash, least recently used first.
_KEEP = 1024
_kept: OrderedDict[str, AgentToken] = OrderedDict()
_kept_lock = threading.Lock()


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
    fingerprint = credentials_sql.fingerprint() if connection.vendor == "postgresql" else "NULL"
    columns = ", ".join(col for part in parts for col in part)
    sql = (
        f"SELECT {columns}, {credentials_sql.switch()}, {fingerprint}"  # noqa: S608
        f" FROM {credentials_sql.joins()} WHERE {credentials_sql.ACTIVE.format('%s')}"
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
    token.fingerprint = raw_row[u_end + 1]
    return token


def token_authenticate(raw: str, *, keep: bool = False) -> AgentToken | None:
    """The active token with its agent, team and owner, or None (HTTP 401).

    The token also carries ``engaged_switch_id``: an engaged kill switch that halts its
    agent (global, its team's or its own), read in the same query, or None; and
    ``fingerprint`` (None but on PostgreSQL). Raises AgentUnavailableError when the agent
    is paused or retired. ``keep``: remember the token for ``token_recall``.
    """
    if not raw or len(raw) > 200:
        return None
    sql, _ = _query()
    row = prepared.fetch_one(sql, [tokens.token_hash(raw)])
    if row is None:
        return None
    token = _build(row)
    if token.agent.status != AgentStatus.ACTIVE:
        raise AgentUnavailableError(f"Agent {token.agent.slug} is {token.agent.status}.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        AgentToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
        token.fingerprint = None  # the row changed: this copy is neither checked nor kept
    elif keep and token.fingerprint is not None:
        kept = _build(row)  # its own objects: the caller may change the ones it got
        with _kept_lock:
            _kept[token.token_hash] = kept
            _kept.move_to_end(token.token_hash)
            while len(_kept) > _KEEP:
                _kept.popitem(last=False)
    return token


def token_recall(raw: str) -> AgentToken | None:
    """The token as this process last kept it, without a query, or None.

    Only for a decision written by ``decision_record`` with the token's fingerprint (see
    the module's docstring). The objects are shared between threads: read them only.
    """
    if not raw or len(raw) > 200:
        return None
    key = tokens.token_hash(raw)
    with _kept_lock:
        token = _kept.get(key)
        if token is None:
            return None
        if timezone.now() - token.last_used_at > _TOUCH_EVERY:
            del _kept[key]
            return None
        _kept.move_to_end(key)
    return token


def token_forget(raw: str) -> None:
    with _kept_lock:
        _kept.pop(tokens.token_hash(raw), None)
