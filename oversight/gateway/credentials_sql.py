"""An agent's credentials as the decision path reads them, and their fingerprint.

Authentication (auth.py) reads a token with its agent, team and owner, the id of an
engaged kill switch that halts the agent, and a fingerprint of all that, in one query
over ``joins()``. The decision's write checks the fingerprint again in its own
transaction and writes nothing when it differs (gateway/pipeline.py, record step), so a
decision is only written if the credentials it was made from are still the database's:
the token not revoked, the agent not paused, retired or edited (its policy version
included), the same team and owner, and no kill switch engaged or released since. That
is what lets the fast lane decide from credentials it kept from an earlier request.

On PostgreSQL the switch and the fingerprint are database functions (``agent_switch``,
``credentials_fingerprint``: gateway/sql/), the same ones ``decision_record`` calls. On
SQLite the switch is the subquery below and the fingerprint is computed in Python from
the query's row (auth.py), in the write's transaction as well.

Only table and column names from the models and constants are interpolated.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection

from oversight.accounts.models import Team
from oversight.agents.models import Agent, AgentToken
from oversight.killswitch.models import KillSwitch, Scope


@cache
def _switch_subquery() -> str:
    return (
        f"(SELECT ks.id FROM {KillSwitch._meta.db_table} ks WHERE ks.engaged = TRUE"  # noqa: S608
        f" AND (ks.scope = '{Scope.GLOBAL.value}' OR ks.team_id = a.team_id"
        " OR ks.agent_id = a.id) ORDER BY ks.id LIMIT 1)"
    )


def switch() -> str:
    """The id of the engaged switch that halts agent ``a`` (everything's, its team's or
    its own), or NULL."""
    if connection.vendor == "postgresql":
        return "agent_switch(a.id, a.team_id)"
    return _switch_subquery()


def fingerprint() -> str:
    """PostgreSQL: the fingerprint of token ``t``'s credentials; elsewhere NULL (Python
    computes it from the row)."""
    return "credentials_fingerprint(t.token_hash)" if connection.vendor == "postgresql" else "NULL"


@cache
def joins() -> str:
    """Token ``t``, agent ``a``, team ``tm`` and owner ``u``."""
    return (
        f"{AgentToken._meta.db_table} t"
        f" JOIN {Agent._meta.db_table} a ON a.id = t.agent_id"
        f" JOIN {Team._meta.db_table} tm ON tm.id = a.team_id"
        f" JOIN {get_user_model()._meta.db_table} u ON u.id = a.owner_id"
    )


# The token's own condition; its hash is the parameter.
ACTIVE = "t.token_hash = %s AND t.revoked_at IS NULL"
