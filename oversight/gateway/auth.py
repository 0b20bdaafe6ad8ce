"""Bearer-token authentication of agents: a hashed lookup, one query.

Every decision starts here, so the one query also brings what the decision reads first:
the agent, its team and owner, the id of an engaged kill switch that halts it, and the
fingerprint of all that (credentials_sql.py).

The decision fast lane keeps what it authenticated (``keep=True``) and recalls it on the
token's next request (``token_recall``) without a query. That is safe because the
decision's write checks the fingerprint in its own transaction and writes nothing when
it differs: a revoked token, a paused or edited agent, a kill switch engaged since, any
change at all, and the pipeline authenticates again (``token_refresh``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
from oversight.gateway.exceptions import UnauthenticatedError
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
    columns = ", ".join(col for part in parts for col in part)
    sql = (
        f"SELECT {columns}, {credentials_sql.switch()}, {credentials_sql.fingerprint()}"  # noqa: S608
        f" FROM {credentials_sql.joins()} WHERE {credentials_sql.ACTIVE}"
    )
    return sql, (ends[0], ends[1], ends[2], ends[3])


@cache
def _converters() -> prepared.Converters:
    return prepared.column_converters(
        [
            field
            for model in (AgentToken, Agent, Team, get_user_model())
            for field in model._meta.concrete_fields
        ]
    )


def _build(raw_row: tuple[Any, ...]) -> AgentToken:
    """Model instances from one row, related to each other as select_related would."""
    _, (t_end, a_end, tm_end, u_end) = _query()
    row = prepared.converted(raw_row, _converters())
    db = connection.alias
    token = AgentToken.from_db(db, _names(AgentToken), row[:t_end])
    agent = Agent.from_db(db, _names(Agent), row[t_end:a_end])
    team = Team.from_db(db, _names(Team), row[a_end:tm_end])
    owner = get_user_model().from_db(db, _names(get_user_model()), row[tm_end:u_end])
    Agent.team.field.set_cached_value(agent, team)
    Agent.owner.field.set_cached_value(agent, owner)
    AgentToken.agent.field.set_cached_value(token, agent)
    token.engaged_switch_id = raw_row[u_end]
    token.fingerprint = raw_row[u_end + 1] or _fingerprint(raw_row)
    return token


@cache
def _last_used_index() -> int:
    return _names(AgentToken).index("last_used_at")


def _fingerprint(raw_row: tuple[Any, ...]) -> str:
    """Where the database does not compute it (SQLite): the same idea in Python, a hash of
    every column read but the token's last_used_at, and the switch id."""
    values = list(raw_row[:-1])
    del values[_last_used_index()]
    return hashlib.md5(repr(values).encode(), usedforsecurity=False).hexdigest()


def credentials_fingerprint(token_hash: str) -> str | None:
    """The fingerprint of the active token with this hash as the database holds it now
    (None: unknown or revoked). PostgreSQL's ``decision_record`` computes it itself."""
    sql, _ = _query()
    row = prepared.fetch_one(sql, [token_hash])
    return None if row is None else _build(row).fingerprint


def token_authenticate(raw: str, *, keep: bool = False) -> AgentToken | None:
    """The active token with its agent, team and owner, or None (HTTP 401).

    The token also carries ``engaged_switch_id``: an engaged kill switch that halts its
    agent (global, its team's or its own), read in the same query, or None; and
    ``fingerprint``. Raises AgentUnavailableError when the agent is paused or retired.
    ``keep``: remember the token for ``token_recall``.
    """
    if not raw or len(raw) > 200:
        return None
    return token_refresh(tokens.token_hash(raw), keep=keep)


def token_refresh(token_hash: str, *, keep: bool = False) -> AgentToken | None:
    """``token_authenticate`` by the token's hash: the credentials read again."""
    sql, _ = _query()
    row = prepared.fetch_one(sql, [token_hash])
    if row is None:
        _forget(token_hash)
        return None
    token = _build(row)
    if token.agent.status != AgentStatus.ACTIVE:
        _forget(token_hash)
        raise AgentUnavailableError(f"Agent {token.agent.slug} is {token.agent.status}.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        AgentToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now  # not part of the fingerprint
    if keep:
        kept = _build(row)  # its own objects: the caller may change the ones it got
        kept.last_used_at = token.last_used_at
        with _kept_lock:
            _kept[token.token_hash] = kept
            _kept.move_to_end(token.token_hash)
            while len(_kept) > _KEEP:
                _kept.popitem(last=False)
    return token


def token_again(token: AgentToken) -> AgentToken:
    """A write found ``token``'s credentials changed since it was read (its fingerprint):
    read them again, and keep them for ``token_recall``. Raises UnauthenticatedError
    (revoked) or AgentUnavailableError (paused or retired), as authentication would."""
    fresh = token_refresh(token.token_hash, keep=True)
    if fresh is None:
        raise UnauthenticatedError("Missing or unknown API token.")
    return fresh


def token_recall(raw: str) -> AgentToken | None:
    """The token as this process last kept it, without a query, or None.

    Only for a decision whose write checks the token's fingerprint (see the module's
    docstring). The objects are shared between threads: read them only.
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
    _forget(tokens.token_hash(raw))


def _forget(token_hash: str) -> None:
    with _kept_lock:
        _kept.pop(token_hash, None)
