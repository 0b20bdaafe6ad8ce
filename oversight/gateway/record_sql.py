"""PostgreSQL: a new decision written by one statement (``decision_record``).

Called outside any transaction, so the statement is its own transaction: it claims the
Idempotency-Key (if any), charges the decision's limits (``limits_charge``), inserts the
Action with what the charges were, and appends its audit event (``audit_append``); the
commit follows at once. Nothing of the decision waits for the application while the
limit counters and the audit lock are held, which is what lets concurrent decisions
through one after another quickly.

Given the token's hash and fingerprint, it first checks that the credentials the decision
was made from are still the database's (credentials_sql.py).

It only writes the usual case. When the key was seen before (SQLSTATE ``OV001``), a
limit would be exceeded (``OV002``) or the credentials changed (``OV003``) it raises,
everything it did is rolled back, and the caller decides again on the general path
(services.py), which handles those cases.
"""

from __future__ import annotations

from functools import cache

from oversight.audit.append_sql import COLUMNS as AUDIT_COLUMNS
from oversight.gateway import credentials_sql

KEY_SEEN = "OV001"
LIMIT_EXCEEDED = "OV002"
CREDENTIALS_CHANGED = "OV003"

_AUDIT_ARGS = ", ".join(f"p_{column}" for column in AUDIT_COLUMNS)


@cache
def create_sql() -> str:
    """The function; its last two arguments may be left out (no credentials check)."""
    return _CREATE_SQL.format(
        fingerprint=credentials_sql.fingerprint(),
        joins=credentials_sql.joins(),
        active=credentials_sql.ACTIVE.format("p_token_hash"),
    )


_CREATE_SQL = f"""
CREATE OR REPLACE FUNCTION decision_record(
    p_action jsonb, p_key varchar, p_body_hash varchar,
    p_limits bigint[], p_windows timestamptz[], p_amounts numeric[],
    p_max_counts bigint[], p_max_sums numeric[], p_amount_texts text[],
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before jsonb, p_after jsonb, p_head text, p_middle text, p_tail text,
    p_token_hash varchar DEFAULT NULL, p_fingerprint text DEFAULT NULL
) RETURNS TABLE (
    limit_usage jsonb, new_id bigint, new_seq bigint, new_prev_hash varchar, new_hash varchar
) AS $$
DECLARE
    v_usage jsonb := '[]';
    v_charged integer := 0;
    v_fingerprint text;
BEGIN
    IF p_fingerprint IS NOT NULL THEN
        SELECT {{fingerprint}} INTO v_fingerprint FROM {{joins}} WHERE {{active}};
        IF v_fingerprint IS DISTINCT FROM p_fingerprint THEN
            RAISE EXCEPTION 'credentials changed' USING ERRCODE = '{CREDENTIALS_CHANGED}';
        END IF;
    END IF;
    IF p_key <> '' THEN
        INSERT INTO gateway_idempotencykey (agent_id, key, body_hash, created_at, action_id)
        VALUES ((p_action->>'agent_id')::bigint, p_key, p_body_hash, p_created_at,
                (p_action->>'id')::uuid)
        ON CONFLICT (agent_id, key) DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'idempotency key seen before' USING ERRCODE = '{KEY_SEEN}';
        END IF;
    END IF;
    IF cardinality(p_limits) > 0 THEN
        SELECT count(*),
               COALESCE(jsonb_agg(jsonb_build_object(
                   'limit_id', charged_limit_id, 'counter_id', charged_counter_id,
                   'amount', p_amount_texts[array_position(p_limits, charged_limit_id)])
                   ORDER BY charged_limit_id), '[]')
        INTO v_charged, v_usage
        FROM limits_charge(p_limits, p_windows, p_amounts, p_max_counts, p_max_sums);
        IF v_charged < cardinality(p_limits) THEN
            RAISE EXCEPTION 'limit exceeded' USING ERRCODE = '{LIMIT_EXCEEDED}';
        END IF;
    END IF;
    INSERT INTO gateway_action
    SELECT * FROM jsonb_populate_record(
        NULL::gateway_action, p_action || jsonb_build_object('limit_usage', v_usage));
    RETURN QUERY
    SELECT v_usage, a.new_id, a.new_seq, a.new_prev_hash, a.new_hash
    FROM audit_append({_AUDIT_ARGS}, p_head, p_middle, p_tail) AS a;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""  # noqa: S608 (constants only)

DROP_SQL = "DROP FUNCTION IF EXISTS decision_record;"

_PLACEHOLDERS = ", ".join(
    [
        "%s::jsonb",
        "%s",
        "%s",
        "%s::bigint[]",
        "%s::timestamptz[]",
        "%s::numeric[]",
        "%s::bigint[]",
        "%s::numeric[]",
        "%s::text[]",
    ]
    + ["%s"] * (len(AUDIT_COLUMNS) + 5)
)
CALL_SQL = (
    "SELECT limit_usage, new_id, new_seq, new_prev_hash, new_hash"  # noqa: S608 (constants)
    f" FROM decision_record({_PLACEHOLDERS})"
)
