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
