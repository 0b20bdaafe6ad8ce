"""PostgreSQL: charge every limit of one decision in one statement (``limits_charge``).

Each limit's counter row for its current window is upserted, taking the rows in limit-id
order so concurrent deciders lock alike; a row whose charge would pass its maximum is not
updated and not returned. The caller compares what came back with what it asked for (all
or none: see limits.py and the gateway's ``decision_record``). The rows stay locked until
the transaction ends.

It is PL/pgSQL rather than a SQL-language function: PostgreSQL (before 18) plans a SQL
function's statements again on every call, which made the planning of this upsert
about two thirds of its cost; PL/pgSQL keeps the plan for the session.
"""

from __future__ import annotations

CREATE_SQL = """
CREATE OR REPLACE FUNCTION limits_charge(
    p_limits bigint[], p_windows timestamptz[], p_amounts numeric[],
    p_max_counts bigint[], p_max_sums numeric[]
) RETURNS TABLE (charged_limit_id bigint, charged_counter_id bigint) AS $$
BEGIN
    RETURN QUERY
    INSERT INTO policy_limitcounter AS c (limit_id, window_start, count, total)
    SELECT lim, win, 1, amount
    FROM unnest(p_limits, p_windows, p_amounts) AS t(lim, win, amount)
    ORDER BY lim
    ON CONFLICT (limit_id, window_start) DO UPDATE
        SET count = c.count + 1, total = c.total + excluded.total
        WHERE c.count + 1
                <= COALESCE(p_max_counts[array_position(p_limits, c.limit_id)], c.count + 1)
          AND c.total + excluded.total
                <= COALESCE(p_max_sums[array_position(p_limits, c.limit_id)],
                            c.total + excluded.total)
    RETURNING c.limit_id, c.id;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

DROP_SQL = "DROP FUNCTION IF EXISTS limits_charge;"

CALL_SQL = (
    "SELECT charged_limit_id, charged_counter_id FROM limits_charge("
    "%s::bigint[], %s::timestamptz[], %s::numeric[], %s::bigint[], %s::numeric[])"
)
