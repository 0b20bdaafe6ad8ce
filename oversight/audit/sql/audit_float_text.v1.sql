-- The text Python's json.dumps gives a float (repr: the shortest digits that read back as
-- the same double, and of those the nearest; fixed notation from 1e-4 up to below 1e16,
-- with at least one digit after the point, else d.ddde+XX), for audit_canonical.
-- PostgreSQL's float8 output with extra_float_digits >= 1 gives digits that read back
-- (Ryu), in another layout, and not always the fewest: it leaves out decimals that lie
-- exactly on the edge of the double's rounding interval, which Python's repr takes (its
-- reading rounds them to this double), so 68659681752636816 for Python's
-- 6.865968175263682e+16. So this takes PostgreSQL's digits, drops one digit while the
-- number one digit shorter that is nearest still reads back as the same double (a
-- shorter one that reads back would too, padded with a zero), and lays out the digits as
-- Python does. NaN and the infinities are not JSON: refused.
CREATE OR REPLACE FUNCTION audit_float_text(p double precision) RETURNS text
STRICT SET extra_float_digits = 1
AS $$
DECLARE
    v_text text := p::text;
    v_negative boolean := left(v_text, 1) = '-';
    v_mantissa text;
    v_digits text;
    v_point int;
    v_shorter text;
    v_up numeric;
    v_shorter_reads boolean;
    v_up_reads boolean;
    v_laid_out text;
BEGIN
    IF p IN ('Infinity'::float8, '-Infinity'::float8, 'NaN'::float8) THEN
        RAISE EXCEPTION 'audit_append: % is not a JSON number', v_text;
    END IF;
    IF p = 0 THEN
        RETURN CASE WHEN v_negative THEN '-0.0' ELSE '0.0' END;
    END IF;
    v_text := ltrim(v_text, '-');
    v_mantissa := split_part(v_text, 'e', 1);
    -- The value is 0.DIGITS x 10^v_point, DIGITS without leading or trailing zeros.
    v_point := coalesce(nullif(position('.' IN v_mantissa), 0) - 1, length(v_mantissa))
        + coalesce(nullif(split_part(v_text, 'e', 2), '')::int, 0);
    v_digits := replace(v_mantissa, '.', '');
    v_point := v_point - (length(v_digits) - length(ltrim(v_digits, '0')));
    v_digits := rtrim(ltrim(v_digits, '0'), '0');
    WHILE length(v_digits) > 1 LOOP
        v_shorter := left(v_digits, length(v_digits) - 1);
        v_up := v_shorter::numeric + 1;
        v_shorter_reads := ('0.' || v_shorter || 'e' || v_point)::float8 = abs(p);
        v_up_reads := ('0.' || v_up || 'e' || (v_point + length(v_up::text) - length(v_shorter)))::numeric
                <= 1.7976931348623157e308
            AND ('0.' || v_up || 'e' || (v_point + length(v_up::text) - length(v_shorter)))::float8
                = abs(p);
        EXIT WHEN NOT (v_shorter_reads OR v_up_reads);
        IF v_shorter_reads AND (NOT v_up_reads
                OR v_digits::numeric - v_shorter::numeric * 10 <= v_up * 10 - v_digits::numeric) THEN
            v_digits := rtrim(v_shorter, '0');
        ELSE
            v_point := v_point + length(v_up::text) - length(v_shorter);
            v_digits := rtrim(v_up::text, '0');
        END IF;
    END LOOP;
    IF v_point <= -4 OR v_point > 16 THEN
        v_laid_out := left(v_digits, 1)
            || CASE WHEN length(v_digits) > 1 THEN '.' || substr(v_digits, 2) ELSE '' END
            || 'e' || CASE WHEN v_point - 1 < 0 THEN '-' ELSE '+' END
            || CASE WHEN abs(v_point - 1) < 10 THEN '0' ELSE '' END || abs(v_point - 1)::text;
    ELSIF v_point <= 0 THEN
        v_laid_out := '0.' || repeat('0', -v_point) || v_digits;
    ELSIF v_point >= length(v_digits) THEN
        v_laid_out := v_digits || repeat('0', v_point - length(v_digits)) || '.0';
    ELSE
        v_laid_out := left(v_digits, v_point) || '.' || substr(v_digits, v_point + 1);
    END IF;
    RETURN CASE WHEN v_negative THEN '-' || v_laid_out ELSE v_laid_out END;
END;
$$ LANGUAGE plpgsql IMMUTABLE;
