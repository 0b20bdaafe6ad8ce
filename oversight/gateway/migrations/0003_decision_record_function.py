"""PostgreSQL: the decision_record function (a new decision written by one statement), version 1."""

from django.db import migrations

from oversight.lib.pg_migrations import postgresql_sql

# Frozen: the SQL exactly as this migration installed it when it was written. Later
# versions come with later migrations; the current source is in the app's sql/ folder.
CREATE_SQL = """
CREATE OR REPLACE FUNCTION decision_record(
    p_action jsonb, p_key varchar, p_body_hash varchar,
    p_limits bigint[], p_windows timestamptz[], p_amounts numeric[],
    p_max_counts bigint[], p_max_sums numeric[], p_amount_texts text[],
    p_created_at timestamptz, p_actor_type varchar, p_actor_user_id bigint,
    p_actor_agent_id bigint, p_actor_label varchar, p_verb varchar, p_target_type varchar,
    p_target_id varchar, p_target_label varchar, p_agent_id bigint, p_request_id varchar,
    p_before jsonb, p_after jsonb, p_head text, p_middle text, p_tail text
) RETURNS TABLE (
    limit_usage jsonb, new_id bigint, new_seq bigint, new_prev_hash varchar, new_hash varchar
) AS $$
DECLARE
    v_usage jsonb := '[]';
    v_charged integer := 0;
BEGIN
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
DROP_SQL = """DROP FUNCTION IF EXISTS decision_record;"""


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0002_action_decision"),
        ("audit", "0003_audit_append_function"),
        ("policy", "0002_limits_charge_function"),
    ]

    operations = [postgresql_sql(CREATE_SQL, DROP_SQL)]
