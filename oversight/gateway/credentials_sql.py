"""An agent's credentials as the decision path reads them, and their fingerprint.

Authentication (auth.py) reads a token with its agent, team and owner, and the id of an
engaged kill switch that halts the agent, in one query over ``joins()``. On PostgreSQL
that query also returns ``fingerprint()``: the md5 of those four rows and the switch id.
``decision_record`` (record_sql.py) computes the fingerprint again in the statement that
writes the decision and refuses to write when it differs, so a decision is only written
if the credentials it was made from are still what the database holds: the token not
revoked, the agent not paused, retired or edited (its policy version included), the same
team and owner, and no kill switch engaged or released since. That is what lets the
fast lane decide from credentials it kept from an earlier request (auth.py).

Only table and column names from the models and constants are interpolated.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model

from oversight.accounts.models import Team
from oversight.agents.models import Agent, AgentToken
from oversight.killswitch.models import KillSwitch, Scope


@cache
def switch() -> str:
    """The id of the first engaged switch that halts agent ``a`` (global, team or own)."""
    return (
        f"(SELECT ks.id FROM {KillSwitch._meta.db_table} ks WHERE ks.engaged = TRUE"  # noqa: S608
        f" AND (ks.scope = '{Scope.GLOBAL.value}' OR ks.team_id = a.team_id"
        " OR ks.agent_id = a.id) ORDER BY ks.id LIMIT 1)"
    )


@cache
def joins() -> str:
    """Token ``t``, agent ``a``, team ``tm`` and owner ``u``."""
    return (
        f"{AgentToken._meta.db_table} t"
        f" JOIN {Agent._meta.db_table} a ON a.id = t.agent_id"
        f" JOIN {Team._meta.db_table} tm ON tm.id = a.team_id"
        f" JOIN {get_user_model()._meta.db_table} u ON u.id = a.owner_id"
    )


# The token's own condition: its hash is the parameter (or the function's argument).
ACTIVE = "t.token_hash = {} AND t.revoked_at IS NULL"


@cache
def fingerprint() -> str:
    """PostgreSQL only: every column of the four rows as text, and the switch id."""
    return f"md5(concat_ws('|', t, a, tm, u, {switch()}))"
