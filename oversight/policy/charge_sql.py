"""PostgreSQL: charge every limit of one decision in one statement (``limits_charge``).

The function's source is policy/sql/limits_charge.v2.sql (each migration that installs it
carries its own copy). Each limit's counter row for its current window is upserted,
taking the rows in limit-id order so concurrent deciders lock alike; a row whose charge
would pass its maximum is not updated and not returned. The caller compares what came
back with what it asked for (all or none: see limits.py and ``decision_record``). The
rows stay locked until the transaction ends. It is PL/pgSQL, which keeps its plan for the
session (PostgreSQL before 18 plans a SQL-language function's statements on every call).
"""

from __future__ import annotations

CALL_SQL = (
    "SELECT charged_limit_id, charged_counter_id FROM limits_charge("
    "%s::bigint[], %s::timestamptz[], %s::numeric[], %s::bigint[], %s::numeric[])"
)
