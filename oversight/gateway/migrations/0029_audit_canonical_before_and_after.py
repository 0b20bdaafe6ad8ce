"""PostgreSQL: audit events keep, and hash, before and after in their canonical text,
whatever text the caller sent (docs/decisions/0033-events-are-appended-through-one-function.md).

- audit_float_text and audit_canonical build the text audit/verifier.py's canonical_text
  gives the values Python reads from a JSON text.
- audit_append version 4 keeps before and after in that text and hashes it; version 3
  kept and hashed the text as the caller sent it.

Going back restores audit_append version 3 and drops the two functions.
"""

from django.db import migrations

from oversight.lib.pg_migrations import postgresql_sql

# Frozen: the SQL exactly as this migration installs it; the current sources are in
# oversight/audit/sql/ (tests/core/test_sql_lifecycle.py compares them).
AUDIT_FLOAT_TEXT_V1 = r"""-- The text Python's json.dumps gives a float (repr: the shortest digits that read back as
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
"""

AUDIT_CANONICAL_V1 = r"""-- The canonical text of a JSON value, as audit/verifier.py's canonical_text gives it for
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
"""

AUDIT_APPEND_V4 = r"""-- Version 4: before and after are kept, and hashed, in their canonical text
-- (audit_canonical), whatever text the caller sent; version 3 kept and hashed the text as
-- it came, so a caller sending the same values in another layout (spaces, key order, 1.50
-- for 1.5) wrote a row the database's rehash vouched for and an outside verifier, which
-- rebuilds the text from the values, did not.
--
-- Version 3: the only way the runtime role appends an event. It builds the canonical text
-- the event's hash covers from its own arguments, the row's columns (audit/verifier.py's
-- canonical_json: keys sorted, no spaces; strings as to_json gives them, which escapes as
-- Python's json does), instead of taking the text from the caller; and it runs as its
-- owner (SECURITY DEFINER), while the runtime role may no longer INSERT into the table
-- (audit/db_roles.py). So every row the runtime role can write hashes to its columns and
-- follows the chain's head (docs/decisions/0033-events-are-appended-through-one-function.md).
-- The text is built before the append lock is taken, as the caller built it before.
CREATE OR REPLACE FUNCTION audit_append(
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before json, p_after json
) RETURNS TABLE (new_id bigint, new_seq bigint, new_prev_hash varchar, new_hash varchar)
SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_before text := audit_canonical(p_before);
    v_after text := audit_canonical(p_after);
    v_head text := '{"actor_agent_id":' || coalesce(p_actor_agent_id::text, 'null')
        || ',"actor_label":' || to_json(p_actor_label)::text
        || ',"actor_type":' || to_json(p_actor_type)::text
        || ',"actor_user_id":' || coalesce(p_actor_user_id::text, 'null')
        || ',"after":' || coalesce(v_after, 'null')
        || ',"agent_id":' || coalesce(p_agent_id::text, 'null')
        || ',"before":' || coalesce(v_before, 'null')
        || ',"created_at":"'
        || to_char(p_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '","prev_hash":"';
    v_middle text := '","request_id":' || to_json(p_request_id)::text || ',"seq":';
    v_tail text := ',"target_id":' || to_json(p_target_id)::text
        || ',"target_label":' || to_json(p_target_label)::text
        || ',"target_type":' || to_json(p_target_type)::text
        || ',"verb":' || to_json(p_verb)::text || '}';
    v_seq bigint;
    v_prev varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(679191);
    SELECT e.seq, e.hash INTO v_seq, v_prev FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
    v_seq := COALESCE(v_seq, 0) + 1;
    v_prev := COALESCE(v_prev, '0000000000000000000000000000000000000000000000000000000000000000');
    RETURN QUERY
    INSERT INTO audit_auditevent AS e (
        seq, created_at, actor_type, actor_user_id, actor_agent_id, actor_label, verb,
        target_type, target_id, target_label, agent_id, request_id, before, after,
        prev_hash, hash
    ) VALUES (
        v_seq, p_created_at, p_actor_type, p_actor_user_id, p_actor_agent_id, p_actor_label,
        p_verb, p_target_type, p_target_id, p_target_label, p_agent_id, p_request_id,
        v_before::json, v_after::json, v_prev,
        encode(sha256(convert_to(v_head || v_prev || v_middle || v_seq::text || v_tail, 'UTF8')),
               'hex')
    )
    RETURNING e.id, e.seq, e.prev_hash, e.hash;
END;
$$ LANGUAGE plpgsql VOLATILE;
-- Only the roles granted it may append (the runtime role: audit/db_roles.py), not PUBLIC.
REVOKE ALL ON FUNCTION audit_append(timestamptz, varchar, bigint, bigint, varchar, varchar, varchar, varchar, varchar, bigint, varchar, json, json) FROM PUBLIC;
"""

AUDIT_APPEND_V3 = r"""-- Version 3: the only way the runtime role appends an event. It builds the canonical text
-- the event's hash covers from its own arguments, the row's columns (audit/verifier.py's
-- canonical_json: keys sorted, no spaces; strings as to_json gives them, which escapes as
-- Python's json does), instead of taking the text from the caller; and it runs as its
-- owner (SECURITY DEFINER), while the runtime role may no longer INSERT into the table
-- (audit/db_roles.py). So every row the runtime role can write hashes to its columns and
-- follows the chain's head (docs/decisions/0033-events-are-appended-through-one-function.md).
-- The text is built before the append lock is taken, as the caller built it before.
CREATE OR REPLACE FUNCTION audit_append(
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before json, p_after json
) RETURNS TABLE (new_id bigint, new_seq bigint, new_prev_hash varchar, new_hash varchar)
SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_head text := '{"actor_agent_id":' || coalesce(p_actor_agent_id::text, 'null')
        || ',"actor_label":' || to_json(p_actor_label)::text
        || ',"actor_type":' || to_json(p_actor_type)::text
        || ',"actor_user_id":' || coalesce(p_actor_user_id::text, 'null')
        || ',"after":' || coalesce(p_after::text, 'null')
        || ',"agent_id":' || coalesce(p_agent_id::text, 'null')
        || ',"before":' || coalesce(p_before::text, 'null')
        || ',"created_at":"'
        || to_char(p_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '","prev_hash":"';
    v_middle text := '","request_id":' || to_json(p_request_id)::text || ',"seq":';
    v_tail text := ',"target_id":' || to_json(p_target_id)::text
        || ',"target_label":' || to_json(p_target_label)::text
        || ',"target_type":' || to_json(p_target_type)::text
        || ',"verb":' || to_json(p_verb)::text || '}';
    v_seq bigint;
    v_prev varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(679191);
    SELECT e.seq, e.hash INTO v_seq, v_prev FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
    v_seq := COALESCE(v_seq, 0) + 1;
    v_prev := COALESCE(v_prev, '0000000000000000000000000000000000000000000000000000000000000000');
    RETURN QUERY
    INSERT INTO audit_auditevent AS e (
        seq, created_at, actor_type, actor_user_id, actor_agent_id, actor_label, verb,
        target_type, target_id, target_label, agent_id, request_id, before, after,
        prev_hash, hash
    ) VALUES (
        v_seq, p_created_at, p_actor_type, p_actor_user_id, p_actor_agent_id, p_actor_label,
        p_verb, p_target_type, p_target_id, p_target_label, p_agent_id, p_request_id,
        p_before, p_after, v_prev,
        encode(sha256(convert_to(v_head || v_prev || v_middle || v_seq::text || v_tail, 'UTF8')),
               'hex')
    )
    RETURNING e.id, e.seq, e.prev_hash, e.hash;
END;
$$ LANGUAGE plpgsql VOLATILE;
-- Only the roles granted it may append (the runtime role: audit/db_roles.py), not PUBLIC.
REVOKE ALL ON FUNCTION audit_append(timestamptz, varchar, bigint, bigint, varchar, varchar, varchar, varchar, varchar, bigint, varchar, json, json) FROM PUBLIC;
"""

DROP_CANONICAL = (
    "DROP FUNCTION IF EXISTS audit_canonical(json);\n"
    "DROP FUNCTION IF EXISTS audit_float_text(double precision);\n"
)


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0028_audit_append_through_one_function"),
    ]

    operations = [
        postgresql_sql(
            AUDIT_FLOAT_TEXT_V1 + AUDIT_CANONICAL_V1 + AUDIT_APPEND_V4,
            AUDIT_APPEND_V3 + DROP_CANONICAL,
        ),
    ]
