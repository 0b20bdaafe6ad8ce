"""The one read of an agent's own action, by its id, that reports, cancellations and the
agent's reads of an action share: an action of the token's agent and environment (a
staging token never reaches a production action, nor the reverse).

A prepared statement, its columns converted as the ORM converts them. Compiling this
query of the action's forty-odd columns cost the ORM far more than reading it: 1.75 ms
of CPU per read through ``.first()``, 0.77 ms through ``QuerySet.raw``, 0.3 ms as it is
here (on the machine of docs/performance.md); and an outcome report follows almost every
allowed action.
"""

from __future__ import annotations

import uuid
from functools import cache

from django.db import connection

from oversight.agents.models import AgentToken
from oversight.gateway.models import Action
from oversight.lib import prepared


@cache
def _query() -> tuple[str, list[str], prepared.Converters]:
    """The SQL, the fields' attribute names and the columns' converters, built once."""
    fields = Action._meta.concrete_fields
    columns = ", ".join(f'"{field.column}"' for field in fields)
    sql = (
        f"SELECT {columns} FROM {Action._meta.db_table} "  # noqa: S608
        "WHERE id = %s AND agent_id = %s AND environment = %s"
    )
    return sql, [field.attname for field in fields], prepared.column_converters(fields)


def action_of_token(*, token: AgentToken, action_id: uuid.UUID | str) -> Action | None:
    """The action with this id if it is of the token's agent and environment, else None."""
    sql, names, converters = _query()
    pk = Action._meta.pk.get_db_prep_value(action_id, connection)  # a UUID, or its hex
    row = prepared.fetch_one(sql, [pk, token.agent_id, token.environment])
    if row is None:
        return None
    return Action.from_db(connection.alias, names, prepared.converted(row, converters))
