-- Version 2: before and after arrive and are kept as json, the canonical text the event's
-- hash covers (audit/fields.py), so the database can rehash an event from its columns.
CREATE OR REPLACE FUNCTION audit_append(
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before json, p_after json, p_head text, p_middle text, p_tail text
) RETURNS TABLE (new_id bigint, new_seq bigint, new_prev_hash varchar, new_hash varchar)
AS $$
DECLARE
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
        encode(sha256(convert_to(p_head || v_prev || p_middle || v_seq::text || p_tail, 'UTF8')),
               'hex')
    )
    RETURNING e.id, e.seq, e.prev_hash, e.hash;
END;
$$ LANGUAGE plpgsql VOLATILE;
