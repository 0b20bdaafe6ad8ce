"""PostgreSQL: decision_record version 5 takes p_commit_async: a decision that is its own
transaction commits without waiting for its WAL flush, and its caller waits for the flush
before answering (docs/decisions/0027-decisions-share-their-flushes.md).

Going back restores version 4.
"""

from django.db import migrations

from oversight.lib.pg_migrations import postgresql_sql

# Frozen: the SQL exactly as this migration installs it; the current source is in
# oversight/gateway/sql/ (tests/core/test_sql_lifecycle.py compares them).
DECISION_RECORD_V5 = """-- Write one decision, or report what prevents it, in one statement.
--
-- The caller (gateway/pipeline.py, record step) has decided everything: the action row,
-- the limits to charge and the audit event. This checks what may have changed since, in
-- this order, and reports the first thing it finds as data (column "found"), having
-- written nothing; Python decides what follows:
--   'stale'          the credentials the decision was made from are no longer the
--                    database's (token revoked, agent or owner changed, kill switch);
--   'no_parent'      parent_id names no action of this agent;
--   'key_seen'       the Idempotency-Key was used before: seen_action, seen_body_hash;
--   'limit_exceeded' these limits would go over (exceeded), nothing charged;
--   'recorded'       the action and its audit event are written (limit_usage, new_*).
--
-- Kill switches order decisions: engaging or releasing one takes this advisory lock
-- exclusively (killswitch/services.py) before anything else, and a decision takes it
-- shared before reading the switches (in the fingerprint). So a decision either commits
-- before the engage, or waits for it and reads the engaged switch: no decision allowed
-- under the old state can commit after the engage's audit event.
--
-- p_commit_async (version 5): the statement is its own transaction (the caller is in
-- autocommit), and the caller waits for the WAL to be flushed before it answers
-- (recording.py, DURABLE_SQL). Then this transaction commits without waiting for its own
-- flush, so its locks (the audit chain's, the limit counters' rows) are not held across
-- an fsync, and concurrent decisions share their flushes. Inside a caller's transaction
-- it is false: that transaction commits as it would.
CREATE OR REPLACE FUNCTION decision_record(
    p_action jsonb, p_key varchar, p_body_hash varchar,
    p_limits bigint[], p_windows timestamptz[], p_amounts numeric[],
    p_max_counts bigint[], p_max_sums numeric[], p_amount_texts text[],
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before json, p_after json, p_head text, p_middle text, p_tail text,
    p_token_hash varchar, p_fingerprint text, p_commit_async boolean
) RETURNS TABLE (
    found text, limit_usage jsonb, exceeded bigint[], seen_action uuid,
    seen_body_hash varchar, new_id bigint, new_seq bigint, new_prev_hash varchar,
    new_hash varchar
) AS $$
DECLARE
    v_agent bigint := (p_action->>'agent_id')::bigint;
    v_parent uuid := (p_action->>'parent_id')::uuid;
    v_charged bigint[];
    v_counters bigint[];
    v_usage jsonb := '[]';
BEGIN
    IF p_commit_async THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM pg_advisory_xact_lock_shared(4919061);
    IF credentials_fingerprint(p_token_hash) IS DISTINCT FROM p_fingerprint THEN
        RETURN QUERY SELECT 'stale'::text, NULL::jsonb, NULL::bigint[], NULL::uuid,
            NULL::varchar, NULL::bigint, NULL::bigint, NULL::varchar, NULL::varchar;
        RETURN;
    END IF;
    IF v_parent IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM gateway_action p WHERE p.id = v_parent AND p.agent_id = v_agent
    ) THEN
        RETURN QUERY SELECT 'no_parent'::text, NULL::jsonb, NULL::bigint[], NULL::uuid,
            NULL::varchar, NULL::bigint, NULL::bigint, NULL::varchar, NULL::varchar;
        RETURN;
    END IF;
    IF p_key <> '' THEN
        -- A concurrent insert of the same key waits here for the other transaction, then
        -- finds its row (committed) or none (rolled back).
        INSERT INTO gateway_idempotencykey (agent_id, key, body_hash, created_at, action_id)
        VALUES (v_agent, p_key, p_body_hash, p_created_at, (p_action->>'id')::uuid)
        ON CONFLICT (agent_id, key) DO NOTHING;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'key_seen'::text, NULL::jsonb, NULL::bigint[], k.action_id,
                k.body_hash, NULL::bigint, NULL::bigint, NULL::varchar, NULL::varchar
            FROM gateway_idempotencykey k WHERE k.agent_id = v_agent AND k.key = p_key;
            RETURN;
        END IF;
    END IF;
    IF cardinality(p_limits) > 0 THEN
        SELECT array_agg(c.charged_limit_id ORDER BY c.charged_limit_id),
               array_agg(c.charged_counter_id ORDER BY c.charged_limit_id)
        INTO v_charged, v_counters
        FROM limits_charge(p_limits, p_windows, p_amounts, p_max_counts, p_max_sums) AS c;
        IF coalesce(cardinality(v_charged), 0) < cardinality(p_limits) THEN
            -- All or none: give back what went through (the rows are still ours) and the
            -- key, so nothing of this attempt is left when it commits.
            UPDATE policy_limitcounter c
            SET count = c.count - 1,
                total = c.total - p_amounts[array_position(p_limits, c.limit_id)]
            WHERE c.id = ANY(coalesce(v_counters, '{}'));
            DELETE FROM gateway_idempotencykey k WHERE k.agent_id = v_agent AND k.key = p_key;
            RETURN QUERY SELECT 'limit_exceeded'::text, NULL::jsonb,
                ARRAY(SELECT l FROM unnest(p_limits) AS l
                      WHERE NOT l = ANY(coalesce(v_charged, '{}')) ORDER BY l),
                NULL::uuid, NULL::varchar, NULL::bigint, NULL::bigint, NULL::varchar,
                NULL::varchar;
            RETURN;
        END IF;
        SELECT jsonb_agg(jsonb_build_object(
                   'limit_id', l.id, 'counter_id', l.counter,
                   'amount', p_amount_texts[array_position(p_limits, l.id)])
               ORDER BY l.id)
        INTO v_usage
        FROM unnest(v_charged, v_counters) AS l(id, counter);
    END IF;
    INSERT INTO gateway_action
    SELECT * FROM jsonb_populate_record(
        NULL::gateway_action, p_action || jsonb_build_object('limit_usage', v_usage));
    RETURN QUERY
    SELECT 'recorded'::text, v_usage, NULL::bigint[], NULL::uuid, NULL::varchar,
        a.new_id, a.new_seq, a.new_prev_hash, a.new_hash
    FROM audit_append(p_created_at, p_actor_type, p_actor_user_id, p_actor_agent_id,
        p_actor_label, p_verb, p_target_type, p_target_id, p_target_label, p_agent_id,
        p_request_id, p_before, p_after, p_head, p_middle, p_tail) AS a;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

# Frozen: version 4, as gateway 0009 installed it.
DECISION_RECORD_V4 = """-- Write one decision, or report what prevents it, in one statement.
--
-- The caller (gateway/pipeline.py, record step) has decided everything: the action row,
-- the limits to charge and the audit event. This checks what may have changed since, in
-- this order, and reports the first thing it finds as data (column "found"), having
-- written nothing; Python decides what follows:
--   'stale'          the credentials the decision was made from are no longer the
--                    database's (token revoked, agent or owner changed, kill switch);
--   'no_parent'      parent_id names no action of this agent;
--   'key_seen'       the Idempotency-Key was used before: seen_action, seen_body_hash;
--   'limit_exceeded' these limits would go over (exceeded), nothing charged;
--   'recorded'       the action and its audit event are written (limit_usage, new_*).
--
-- Kill switches order decisions: engaging or releasing one takes this advisory lock
-- exclusively (killswitch/services.py) before anything else, and a decision takes it
-- shared before reading the switches (in the fingerprint). So a decision either commits
-- before the engage, or waits for it and reads the engaged switch: no decision allowed
-- under the old state can commit after the engage's audit event.
CREATE OR REPLACE FUNCTION decision_record(
    p_action jsonb, p_key varchar, p_body_hash varchar,
    p_limits bigint[], p_windows timestamptz[], p_amounts numeric[],
    p_max_counts bigint[], p_max_sums numeric[], p_amount_texts text[],
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before json, p_after json, p_head text, p_middle text, p_tail text,
    p_token_hash varchar, p_fingerprint text
) RETURNS TABLE (
    found text, limit_usage jsonb, exceeded bigint[], seen_action uuid,
    seen_body_hash varchar, new_id bigint, new_seq bigint, new_prev_hash varchar,
    new_hash varchar
) AS $$
DECLARE
    v_agent bigint := (p_action->>'agent_id')::bigint;
    v_parent uuid := (p_action->>'parent_id')::uuid;
    v_charged bigint[];
    v_counters bigint[];
    v_usage jsonb := '[]';
BEGIN
    PERFORM pg_advisory_xact_lock_shared(4919061);
    IF credentials_fingerprint(p_token_hash) IS DISTINCT FROM p_fingerprint THEN
        RETURN QUERY SELECT 'stale'::text, NULL::jsonb, NULL::bigint[], NULL::uuid,
            NULL::varchar, NULL::bigint, NULL::bigint, NULL::varchar, NULL::varchar;
        RETURN;
    END IF;
    IF v_parent IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM gateway_action p WHERE p.id = v_parent AND p.agent_id = v_agent
    ) THEN
        RETURN QUERY SELECT 'no_parent'::text, NULL::jsonb, NULL::bigint[], NULL::uuid,
            NULL::varchar, NULL::bigint, NULL::bigint, NULL::varchar, NULL::varchar;
        RETURN;
    END IF;
    IF p_key <> '' THEN
        -- A concurrent insert of the same key waits here for the other transaction, then
        -- finds its row (committed) or none (rolled back).
        INSERT INTO gateway_idempotencykey (agent_id, key, body_hash, created_at, action_id)
        VALUES (v_agent, p_key, p_body_hash, p_created_at, (p_action->>'id')::uuid)
        ON CONFLICT (agent_id, key) DO NOTHING;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'key_seen'::text, NULL::jsonb, NULL::bigint[], k.action_id,
                k.body_hash, NULL::bigint, NULL::bigint, NULL::varchar, NULL::varchar
            FROM gateway_idempotencykey k WHERE k.agent_id = v_agent AND k.key = p_key;
            RETURN;
        END IF;
    END IF;
    IF cardinality(p_limits) > 0 THEN
        SELECT array_agg(c.charged_limit_id ORDER BY c.charged_limit_id),
               array_agg(c.charged_counter_id ORDER BY c.charged_limit_id)
        INTO v_charged, v_counters
        FROM limits_charge(p_limits, p_windows, p_amounts, p_max_counts, p_max_sums) AS c;
        IF coalesce(cardinality(v_charged), 0) < cardinality(p_limits) THEN
            -- All or none: give back what went through (the rows are still ours) and the
            -- key, so nothing of this attempt is left when it commits.
            UPDATE policy_limitcounter c
            SET count = c.count - 1,
                total = c.total - p_amounts[array_position(p_limits, c.limit_id)]
            WHERE c.id = ANY(coalesce(v_counters, '{}'));
            DELETE FROM gateway_idempotencykey k WHERE k.agent_id = v_agent AND k.key = p_key;
            RETURN QUERY SELECT 'limit_exceeded'::text, NULL::jsonb,
                ARRAY(SELECT l FROM unnest(p_limits) AS l
                      WHERE NOT l = ANY(coalesce(v_charged, '{}')) ORDER BY l),
                NULL::uuid, NULL::varchar, NULL::bigint, NULL::bigint, NULL::varchar,
                NULL::varchar;
            RETURN;
        END IF;
        SELECT jsonb_agg(jsonb_build_object(
                   'limit_id', l.id, 'counter_id', l.counter,
                   'amount', p_amount_texts[array_position(p_limits, l.id)])
               ORDER BY l.id)
        INTO v_usage
        FROM unnest(v_charged, v_counters) AS l(id, counter);
    END IF;
    INSERT INTO gateway_action
    SELECT * FROM jsonb_populate_record(
        NULL::gateway_action, p_action || jsonb_build_object('limit_usage', v_usage));
    RETURN QUERY
    SELECT 'recorded'::text, v_usage, NULL::bigint[], NULL::uuid, NULL::varchar,
        a.new_id, a.new_seq, a.new_prev_hash, a.new_hash
    FROM audit_append(p_created_at, p_actor_type, p_actor_user_id, p_actor_agent_id,
        p_actor_label, p_verb, p_target_type, p_target_id, p_target_label, p_agent_id,
        p_request_id, p_before, p_after, p_head, p_middle, p_tail) AS a;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

DROP = "DROP FUNCTION IF EXISTS decision_record;\n"


class Migration(migrations.Migration):
    dependencies = [("gateway", "0015_provenance")]

    operations = [postgresql_sql(DROP + DECISION_RECORD_V5, DROP + DECISION_RECORD_V4)]
