"""PostgreSQL: limits_charge version 2, in PL/pgSQL so that its plan is kept.

Same signature and behaviour; going back leaves this version in place.
"""

from django.db import migrations

from oversight.lib.pg_migrations import postgresql_sql

# Frozen: the SQL exactly as this migration installed it when it was written. Later
# versions come with later migrations; the current source is in the app's sql/ folder.
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


class Migration(migrations.Migration):
    dependencies = [("policy", "0002_limits_charge_function")]

    operations = [postgresql_sql(CREATE_SQL, None)]
