-- Record an action's outcome, reported by its agent, in one statement.
--
-- The caller (gateway/outcomes.py) read the action, checked that it may be reported (its
-- status; the action, resource and params the agent says it ran) and built the new
-- values and the audit event from what it read. This checks what may have changed since,
-- in this order, and reports the first thing it finds as data (o_found), having written
-- nothing; Python decides what follows:
--   'stale'    the credentials the report was made with are no longer the database's
--              (token revoked, agent or owner changed, kill switch): read them again;
--   'changed'  the action is no longer in the status the caller read (another report,
--              an expiry or a cancellation got there first): read it again;
--   'recorded' the outcome and its audit event are written (o_new_*).
-- Nothing is locked while Python works: the action's row only from the update to the
-- commit, the audit chain only from its append to the commit.
--
-- p_commit_async: as decision_record's. The CALL is its own transaction (the caller is in
-- autocommit); it commits without waiting for its WAL flush, so the audit chain's lock is
-- not held across an fsync, then a second transaction writes a small WAL record and
-- commits with the session's synchronous_commit, so the report is durable before the
-- caller has an answer. Inside a caller's transaction it is false: nothing is committed
-- here (docs/decisions/0027-decisions-share-their-flushes.md).
-- Version 2 passes the audit event's columns only: audit_append (version 3) builds the
-- canonical text its hash covers, which earlier versions took from the caller.
CREATE OR REPLACE PROCEDURE action_report(
    p_id uuid, p_agent bigint, p_from_status varchar, p_status varchar, p_after jsonb,
    p_error text, p_finished_at timestamptz,
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before json, p_audit_after json,
    p_token_hash varchar, p_fingerprint text, p_commit_async boolean,
    OUT o_found text, OUT o_new_id bigint, OUT o_new_seq bigint,
    OUT o_new_prev_hash varchar, OUT o_new_hash varchar, OUT o_durable_lsn pg_lsn
) AS $$
BEGIN
    IF p_commit_async THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    IF credentials_fingerprint(p_token_hash) IS DISTINCT FROM p_fingerprint THEN
        o_found := 'stale';
        RETURN;
    END IF;
    UPDATE gateway_action a
    SET status = p_status, after = p_after, error = p_error, finished_at = p_finished_at
    WHERE a.id = p_id AND a.agent_id = p_agent AND a.status = p_from_status;
    IF NOT FOUND THEN
        o_found := 'changed';
        RETURN;
    END IF;
    SELECT 'recorded', a.new_id, a.new_seq, a.new_prev_hash, a.new_hash
    INTO o_found, o_new_id, o_new_seq, o_new_prev_hash, o_new_hash
    FROM audit_append(p_created_at, p_actor_type, p_actor_user_id, p_actor_agent_id,
        p_actor_label, p_verb, p_target_type, p_target_id, p_target_label, p_agent_id,
        p_request_id, p_before, p_audit_after) AS a;
    IF p_commit_async THEN
        COMMIT;
        o_durable_lsn := pg_logical_emit_message(true, 'oversight.durable', '');
    END IF;
END;
$$ LANGUAGE plpgsql;
