
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
