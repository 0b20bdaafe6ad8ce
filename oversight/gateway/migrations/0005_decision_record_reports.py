"""PostgreSQL: decision_record version 3 reports what it found as data, and kill switches
order decisions; agent_switch and credentials_fingerprint version 1 (one definition of
what a decision is made from, shared by authentication and the write).

Going back drops them and restores decision_record version 2.
"""

from django.conf import settings
from django.db import migrations

from oversight.lib.pg_migrations import postgresql_sql

# Frozen: the SQL exactly as this migration installs it; the current source is in
# oversight/gateway/sql/ (tests/core/test_sql_lifecycle.py compares them).
AGENT_SWITCH_V1 = """-- The engaged kill switch that halts an agent, if any: everything's, its team's or its own.
CREATE OR REPLACE FUNCTION agent_switch(p_agent_id bigint, p_team_id bigint)
RETURNS bigint AS $$
DECLARE
    v_switch bigint;
BEGIN
    SELECT ks.id INTO v_switch
    FROM killswitch_killswitch ks
    WHERE ks.engaged
      AND (ks.scope = 'global' OR ks.team_id = p_team_id OR ks.agent_id = p_agent_id)
    ORDER BY ks.id
    LIMIT 1;
    RETURN v_switch;
END;
$$ LANGUAGE plpgsql STABLE;
"""

CREDENTIALS_FINGERPRINT_V1 = """-- What a decision is made from, as one hash: the active token (all but its last_used_at,
-- which authentication touches), its agent, team and owner rows, and the switch that
-- halts the agent. NULL when the token is unknown or revoked.
CREATE OR REPLACE FUNCTION credentials_fingerprint(p_token_hash varchar)
RETURNS text AS $$
DECLARE
    v_fingerprint text;
BEGIN
    SELECT md5(concat_ws('|', t.id, t.agent_id, t.environment, t.revoked_at, a, tm, u,
                         agent_switch(a.id, a.team_id)))
    INTO v_fingerprint
    FROM agents_agenttoken t
    JOIN agents_agent a ON a.id = t.agent_id
    JOIN accounts_team tm ON tm.id = a.team_id
    JOIN auth_user u ON u.id = a.owner_id
    WHERE t.token_hash = p_token_hash AND t.revoked_at IS NULL;
    RETURN v_fingerprint;
END;
$$ LANGUAGE plpgsql STABLE;
"""

DECISION_RECORD_V3 = """-- Write one decision, or report what prevents it, in one statement.
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
    p_before jsonb, p_after jsonb, p_head text, p_middle text, p_tail text,
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

DECISION_RECORD_V2 = """DROP FUNCTION IF EXISTS decision_record;

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
        SELECT md5(concat_ws('|', t, a, tm, u, (SELECT ks.id FROM killswitch_killswitch ks WHERE ks.engaged = TRUE AND (ks.scope = 'global' OR ks.team_id = a.team_id OR ks.agent_id = a.id) ORDER BY ks.id LIMIT 1))) INTO v_fingerprint FROM agents_agenttoken t JOIN agents_agent a ON a.id = t.agent_id JOIN accounts_team tm ON tm.id = a.team_id JOIN auth_user u ON u.id = a.owner_id WHERE t.token_hash = p_token_hash AND t.revoked_at IS NULL;
        IF v_fingerprint IS DISTINCT FROM p_fingerprint THEN
            RAISE EXCEPTION 'credentials changed' USING ERRCODE = 'OV003';
        END IF;
    END IF;
    IF p_key <> '' THEN
        INSERT INTO gateway_idempotencykey (agent_id, key, body_hash, created_at, action_id)
        VALUES ((p_action->>'agent_id')::bigint, p_key, p_body_hash, p_created_at,
                (p_action->>'id')::uuid)
        ON CONFLICT (agent_id, key) DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'idempotency key seen before' USING ERRCODE = 'OV001';
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
            RAISE EXCEPTION 'limit exceeded' USING ERRCODE = 'OV002';
        END IF;
    END IF;
    INSERT INTO gateway_action
    SELECT * FROM jsonb_populate_record(
        NULL::gateway_action, p_action || jsonb_build_object('limit_usage', v_usage));
    RETURN QUERY
    SELECT v_usage, a.new_id, a.new_seq, a.new_prev_hash, a.new_hash
    FROM audit_append(p_created_at, p_actor_type, p_actor_user_id, p_actor_agent_id, p_actor_label, p_verb, p_target_type, p_target_id, p_target_label, p_agent_id, p_request_id, p_before, p_after, p_head, p_middle, p_tail) AS a;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

FORWARD = (
    "DROP FUNCTION IF EXISTS decision_record;\n"
    + AGENT_SWITCH_V1
    + CREDENTIALS_FINGERPRINT_V1
    + DECISION_RECORD_V3
)
BACKWARD = (
    "DROP FUNCTION IF EXISTS decision_record;\n"
    "DROP FUNCTION IF EXISTS credentials_fingerprint;\n"
    "DROP FUNCTION IF EXISTS agent_switch;\n" + DECISION_RECORD_V2
)


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0004_decision_record_credentials"),
        ("policy", "0003_limits_charge_plpgsql"),
        ("audit", "0003_audit_append_function"),
        ("agents", "0003_monitoring_and_lifecycle_fields"),
        ("accounts", "0002_team_review_settings"),
        ("killswitch", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [postgresql_sql(FORWARD, BACKWARD)]
