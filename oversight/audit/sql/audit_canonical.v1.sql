-- The canonical text of a JSON value, as audit/verifier.py's canonical_text gives it for
-- the value Python's json.loads reads from it: keys sorted by code point (C collation
-- compares UTF-8 bytes, which order as code points), a repeated key's last value, no
-- spaces, strings escaped as to_json escapes them (as Python's json does), integers as
-- they are (-0 as 0), other numbers as audit_float_text lays them out. For audit_append,
-- which keeps before and after in this text, so that what the database hashes is what an
-- outside verifier rebuilds from the values (docs/decisions/0033). Text already
-- canonical comes back unchanged.
CREATE OR REPLACE FUNCTION audit_canonical(p json) RETURNS text
STRICT
AS $$
DECLARE
    v_token text;
BEGIN
    CASE json_typeof(p)
    WHEN 'object' THEN
        RETURN '{' || coalesce((
            SELECT string_agg(to_json(m.key)::text || ':' || audit_canonical(m.value), ','
                              ORDER BY m.key COLLATE "C")
            FROM (SELECT DISTINCT ON (e.key) e.key, e.value
                  FROM json_each(p) WITH ORDINALITY AS e(key, value, n)
                  ORDER BY e.key, e.n DESC) AS m
        ), '') || '}';
    WHEN 'array' THEN
        RETURN '[' || coalesce((
            SELECT string_agg(audit_canonical(e.value), ',' ORDER BY e.n)
            FROM json_array_elements(p) WITH ORDINALITY AS e(value, n)
        ), '') || ']';
    WHEN 'string' THEN
        RETURN to_json(p #>> '{}')::text;
    WHEN 'number' THEN
        v_token := btrim(p::text, E' \t\n\r');
        IF v_token !~ '^-?[0-9]+$' THEN
            RETURN audit_float_text(v_token::float8);
        END IF;
        -- Python reads no integer of more digits (sys.get_int_max_str_digits).
        IF length(v_token) > 4300 THEN
            RAISE EXCEPTION 'audit_append: an integer of % digits', length(v_token);
        END IF;
        RETURN v_token::numeric::text;
    ELSE
        RETURN btrim(p::text, E' \t\n\r');  -- true, false, null
    END CASE;
END;
$$ LANGUAGE plpgsql IMMUTABLE;
