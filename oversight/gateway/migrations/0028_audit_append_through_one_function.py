"""PostgreSQL: audit events are appended through one function, which hashes their columns
(docs/decisions/0033-events-are-appended-through-one-function.md). In one step, so that
no procedure ever calls an audit_append that is not there:

- audit_append version 3 builds the canonical text its hash covers from the event's
  columns, runs as its owner (SECURITY DEFINER), and PUBLIC may not execute it; the
  grants after migrate take INSERT on the audit table from the runtime role
  (audit/db_roles.py). It lives in oversight/audit/sql/; it is installed here, with the
  procedures that call it.
- decision_record version 7 and action_report version 2 pass the event's columns only.
- audit_append version 2, which took the text from its caller, is dropped.

Going back restores audit_append version 2, decision_record version 6 and action_report
version 1, and drops version 3.
"""

from django.db import migrations

from oversight.lib.pg_migrations import postgresql_sql

# Frozen: the SQL exactly as this migration installs it; the current sources are in
# oversight/audit/sql/ and oversight/gateway/sql/ (tests/core/test_sql_lifecycle.py
# compares them).
AUDIT_APPEND_V3 = """-- Version 3: the only way the runtime role appends an event. It builds the canonical text
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

DECISION_RECORD_V7 = """-- Write one decision, or report what prevents it, in one statement.
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
"""

ACTION_REPORT_V2 = """-- Record an action's outcome, reported by its agent, in one statement.
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
"""

DECISION_RECORD_V6 = """-- Write one decision, or report what prevents it, in one statement.
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
CREATE OR REPLACE PROCEDURE decision_record(
    p_action jsonb, p_key varchar, p_body_hash varchar,
    p_limits bigint[], p_windows timestamptz[], p_amounts numeric[],
    p_max_counts bigint[], p_max_sums numeric[], p_amount_texts text[],
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before json, p_after json, p_head text, p_middle text, p_tail text,
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
            p_request_id, p_before, p_after, p_head, p_middle, p_tail) AS a;
    END checks;
    -- Stale credentials, an unknown parent and an exceeded limit wrote nothing and answer
    -- from nothing another transaction wrote: they are not waited for.
    IF p_commit_async AND o_found IN ('recorded', 'key_seen') THEN
        COMMIT;
        o_durable_lsn := pg_logical_emit_message(true, 'oversight.durable', '');
    END IF;
END;
$$ LANGUAGE plpgsql;
"""

ACTION_REPORT_V1 = """-- Record an action's outcome, reported by its agent, in one statement.
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
CREATE OR REPLACE PROCEDURE action_report(
    p_id uuid, p_agent bigint, p_from_status varchar, p_status varchar, p_after jsonb,
    p_error text, p_finished_at timestamptz,
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before json, p_audit_after json, p_head text, p_middle text, p_tail text,
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
        p_request_id, p_before, p_audit_after, p_head, p_middle, p_tail) AS a;
    IF p_commit_async THEN
        COMMIT;
        o_durable_lsn := pg_logical_emit_message(true, 'oversight.durable', '');
    END IF;
END;
$$ LANGUAGE plpgsql;
"""

AUDIT_APPEND_V2 = """-- Version 2: before and after arrive and are kept as json, the canonical text the event's
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
"""

DROP_PROCEDURES = "DROP PROCEDURE IF EXISTS decision_record;\nDROP PROCEDURE IF EXISTS action_report;\n"
DROP_AUDIT_APPEND_V3 = "DROP FUNCTION IF EXISTS audit_append(timestamptz, varchar, bigint, bigint, varchar, varchar, varchar, varchar, varchar, bigint, varchar, json, json);\n"
DROP_AUDIT_APPEND_V2 = "DROP FUNCTION IF EXISTS audit_append(timestamptz, varchar, bigint, bigint, varchar, varchar, varchar, varchar, varchar, bigint, varchar, json, json, text, text, text);\n"


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0009_agent_change_index_started"),
        ("gateway", "0027_action_request_id"),
    ]

    operations = [
        postgresql_sql(
            AUDIT_APPEND_V3
            + DROP_PROCEDURES
            + DECISION_RECORD_V7
            + ACTION_REPORT_V2
            + DROP_AUDIT_APPEND_V2,
            AUDIT_APPEND_V2
            + DROP_PROCEDURES
            + DECISION_RECORD_V6
            + ACTION_REPORT_V1
            + DROP_AUDIT_APPEND_V3,
        ),
    ]
