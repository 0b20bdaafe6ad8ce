-- Write one decision, or report what prevents it, in one statement.
--
-- The caller (gateway/pipeline.py, record step) has decided everything: the action row,
-- the limits to charge and the audit event. This checks what may have changed since, in
-- this order, and reports the first thing it finds as data (o_found), having written
-- nothing; Python decides what follows:
--   'stale'          the credentials the decision was made from are no longer the
--                    database's (token revoked, agent or owner changed, kill switch);
--   'no_parent'      parent_id names no action of this agent;
--   'key_seen'       the Idempotency-Key was used before: o_seen_action, o_seen_body_hash;
--   'limit_exceeded' these limits would go over (o_exceeded), nothing charged;
--   'recorded'       the action and its audit event are written (o_limit_usage, o_new_*).
--
-- Kill switches order decisions: engaging or releasing one takes this advisory lock
-- exclusively (killswitch/services.py) before anything else, and a decision takes it
-- shared before reading the switches (in the fingerprint). So a decision either commits
-- before the engage, or waits for it and reads the engaged switch: no decision allowed
-- under the old state can commit after the engage's audit event.
--
-- p_commit_async: the CALL is its own transaction (the caller is in autocommit). Then
-- the decision commits without waiting for its own WAL flush, so its locks (the audit
-- chain's, the limit counters' rows) are not held across an fsync and concurrent
-- decisions share their flushes; and before returning a recorded decision, or the earlier
-- one an Idempotency-Key names, a second transaction writes a small WAL record (a
-- logical message read by nobody, prefix 'oversight.durable') and commits with the
-- session's synchronous_commit, so the WAL is flushed past the decision's commit before
-- the caller has an answer (o_durable_lsn: that record's position). Version 6 is a
-- procedure so that both transactions are one statement and one round trip; version 5
-- left the second to the caller. Inside a caller's transaction p_commit_async is false:
-- nothing is committed here, and that transaction commits as it would
-- (docs/decisions/0027-decisions-share-their-flushes.md).
-- Version 7 passes the audit event's columns only: audit_append (version 3) builds the
-- canonical text its hash covers, which earlier versions took from the caller.
CREATE OR REPLACE PROCEDURE decision_record(
    p_action jsonb, p_key varchar, p_body_hash varchar,
    p_limits bigint[], p_windows timestamptz[], p_amounts numeric[],
    p_max_counts bigint[], p_max_sums numeric[], p_amount_texts text[],
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before json, p_after json,
    p_token_hash varchar, p_fingerprint text, p_commit_async boolean,
    OUT o_found text, OUT o_limit_usage jsonb, OUT o_exceeded bigint[],
    OUT o_seen_action uuid, OUT o_seen_body_hash varchar, OUT o_new_id bigint,
    OUT o_new_seq bigint, OUT o_new_prev_hash varchar, OUT o_new_hash varchar,
    OUT o_durable_lsn pg_lsn
) AS $$
DECLARE
    v_agent bigint := (p_action->>'agent_id')::bigint;
    v_parent uuid := (p_action->>'parent_id')::uuid;
    v_charged bigint[];
    v_counters bigint[];
BEGIN
    IF p_commit_async THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM pg_advisory_xact_lock_shared(4919061);
    <<checks>>
    BEGIN
        IF credentials_fingerprint(p_token_hash) IS DISTINCT FROM p_fingerprint THEN
            o_found := 'stale';
            EXIT checks;
        END IF;
        IF v_parent IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM gateway_action p WHERE p.id = v_parent AND p.agent_id = v_agent
        ) THEN
            o_found := 'no_parent';
            EXIT checks;
        END IF;
        IF p_key <> '' THEN
            -- A concurrent insert of the same key waits here for the other transaction,
            -- then finds its row (committed) or none (rolled back).
            INSERT INTO gateway_idempotencykey (agent_id, key, body_hash, created_at, action_id)
            VALUES (v_agent, p_key, p_body_hash, p_created_at, (p_action->>'id')::uuid)
            ON CONFLICT (agent_id, key) DO NOTHING;
            IF NOT FOUND THEN
                o_found := 'key_seen';
                SELECT k.action_id, k.body_hash INTO o_seen_action, o_seen_body_hash
                FROM gateway_idempotencykey k WHERE k.agent_id = v_agent AND k.key = p_key;
                EXIT checks;
            END IF;
        END IF;
        o_limit_usage := '[]';
        IF cardinality(p_limits) > 0 THEN
            SELECT array_agg(c.charged_limit_id ORDER BY c.charged_limit_id),
                   array_agg(c.charged_counter_id ORDER BY c.charged_limit_id)
            INTO v_charged, v_counters
            FROM limits_charge(p_limits, p_windows, p_amounts, p_max_counts, p_max_sums) AS c;
            IF coalesce(cardinality(v_charged), 0) < cardinality(p_limits) THEN
                -- All or none: give back what went through (the rows are still ours) and
                -- the key, so nothing of this attempt is left when it commits.
                UPDATE policy_limitcounter c
                SET count = c.count - 1,
                    total = c.total - p_amounts[array_position(p_limits, c.limit_id)]
                WHERE c.id = ANY(coalesce(v_counters, '{}'));
                DELETE FROM gateway_idempotencykey k
                WHERE k.agent_id = v_agent AND k.key = p_key;
                o_found := 'limit_exceeded';
                o_limit_usage := NULL;
                o_exceeded := ARRAY(SELECT l FROM unnest(p_limits) AS l
                                    WHERE NOT l = ANY(coalesce(v_charged, '{}')) ORDER BY l);
                EXIT checks;
            END IF;
            SELECT jsonb_agg(jsonb_build_object(
                       'limit_id', l.id, 'counter_id', l.counter,
                       'amount', p_amount_texts[array_position(p_limits, l.id)])
                   ORDER BY l.id)
            INTO o_limit_usage
            FROM unnest(v_charged, v_counters) AS l(id, counter);
        END IF;
        INSERT INTO gateway_action
        SELECT * FROM jsonb_populate_record(
            NULL::gateway_action, p_action || jsonb_build_object('limit_usage', o_limit_usage));
        SELECT 'recorded', a.new_id, a.new_seq, a.new_prev_hash, a.new_hash
        INTO o_found, o_new_id, o_new_seq, o_new_prev_hash, o_new_hash
        FROM audit_append(p_created_at, p_actor_type, p_actor_user_id, p_actor_agent_id,
            p_actor_label, p_verb, p_target_type, p_target_id, p_target_label, p_agent_id,
            p_request_id, p_before, p_after) AS a;
    END checks;
    -- Stale credentials, an unknown parent and an exceeded limit wrote nothing and answer
    -- from nothing another transaction wrote: they are not waited for.
    IF p_commit_async AND o_found IN ('recorded', 'key_seen') THEN
        COMMIT;
        o_durable_lsn := pg_logical_emit_message(true, 'oversight.durable', '');
    END IF;
END;
$$ LANGUAGE plpgsql;
