"""PostgreSQL: append an audit event in one statement, the chain head read under the lock.

``audit_append`` takes the append lock (transaction-scoped, so appenders queue until the
caller's transaction ends and the chain cannot fork), reads the head, and inserts the row
with its hash computed from the canonical JSON the caller split around ``prev_hash`` and
``seq`` (``chain.canonical_json_parts``). It is the same hash ``chain.compute_hash`` gives,
so ``manage.py audit_verify`` checks these rows like any other. In READ COMMITTED each
statement of a volatile function takes a fresh snapshot, so the head is read as it is
once the lock is granted.
"""

from __future__ import annotations

from oversight.audit.chain import GENESIS_HASH, HASHED_FIELDS

# Arbitrary but fixed key for pg_advisory_xact_lock: "serialise audit appends".
APPEND_LOCK_KEY = 0x0A5D17

# The columns the caller passes: every hashed field but the chain's own two.
COLUMNS = tuple(field for field in HASHED_FIELDS if field not in ("seq", "prev_hash"))

CREATE_SQL = f"""
CREATE OR REPLACE FUNCTION audit_append(
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before jsonb, p_after jsonb, p_head text, p_middle text, p_tail text
) RETURNS TABLE (new_id bigint, new_seq bigint, new_prev_hash varchar, new_hash varchar)
AS $$
DECLARE
    v_seq bigint;
    v_prev varchar;
BEGIN
    PERFORM pg_advisory_xact_lock({APPEND_LOCK_KEY});
    SELECT e.seq, e.hash INTO v_seq, v_prev FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
    v_seq := COALESCE(v_seq, 0) + 1;
    v_prev := COALESCE(v_prev, '{GENESIS_HASH}');
    RETURN QUERY
    INSERT INTO audit_auditevent AS e (
        seq, created_at, actor_type, actor_user_id, actor_agent_id, actor_label, verb,
        target_type, target_id, target_label, agent_id, request_id, before, after,
        prev_hash, hash
    ) VALUES (
        v_seq, p_created_at, p_actor_type, p_actor_user_id, p_actor_agent_id, p_actor_label,
        p_verb, p_target_type, p_target_id, p_target_label, p_agent_id, p_request_id,
        p_before, p_after, v_prev,
        encode(sha256(convert_to(p_head || v_prev || p_middle || v_seq::text || p_tail, 'UTF8')),
               'hex')
    )
    RETURNING e.id, e.seq, e.prev_hash, e.hash;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""  # noqa: S608 (constants only)

DROP_SQL = "DROP FUNCTION IF EXISTS audit_append;"

# One call; the caller passes the columns in COLUMNS order, then head, middle and tail.
_PLACEHOLDERS = ", ".join(["%s"] * (len(COLUMNS) + 3))
CALL_SQL = f"SELECT new_id, new_seq, new_prev_hash, new_hash FROM audit_append({_PLACEHOLDERS})"  # noqa: S608
