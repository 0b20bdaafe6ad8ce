-- Every row appended to the audit log is checked below the application: it must follow the
-- chain's head (the next seq, the head's hash as its prev_hash) and hash to its hash (the
-- canonical line rebuilt from its columns: audit/rehash.py, canonical_line_sql('NEW.')).
-- audit_append writes such rows; a row written any other way by the processes' role (an
-- INSERT with made-up values) is refused, so a stolen runtime password cannot append a
-- row that would break the chain for every later event and every later checkpoint.
CREATE OR REPLACE FUNCTION audit_check_insert() RETURNS trigger AS $$
DECLARE
    v_follows boolean;
    v_hashes boolean;
BEGIN
    -- One query: the head (an append holds audit_append's lock, so it cannot move; a row
    -- written around that lock meets the unique seq instead), and the row's own hash.
    SELECT NEW.seq = COALESCE(h.seq, 0) + 1
           AND NEW.prev_hash = COALESCE(
               h.hash, '0000000000000000000000000000000000000000000000000000000000000000'),
           NEW.hash = encode(sha256(convert_to(
               CASE WHEN concat(NEW."actor_label", NEW."actor_type", NEW."prev_hash", NEW."request_id", NEW."target_id", NEW."target_label", NEW."target_type", NEW."verb") ~ '[\x01-\x1f"\\]' THEN '{"actor_agent_id":' || coalesce(NEW."actor_agent_id"::text, 'null') || ',"actor_label":' || to_json(NEW."actor_label")::text || ',"actor_type":' || to_json(NEW."actor_type")::text || ',"actor_user_id":' || coalesce(NEW."actor_user_id"::text, 'null') || ',"after":' || coalesce(NEW."after"::text, 'null') || ',"agent_id":' || coalesce(NEW."agent_id"::text, 'null') || ',"before":' || coalesce(NEW."before"::text, 'null') || ',"created_at":' || '"' || to_char(NEW."created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"' || ',"prev_hash":' || to_json(NEW."prev_hash")::text || ',"request_id":' || to_json(NEW."request_id")::text || ',"seq":' || coalesce(NEW."seq"::text, 'null') || ',"target_id":' || to_json(NEW."target_id")::text || ',"target_label":' || to_json(NEW."target_label")::text || ',"target_type":' || to_json(NEW."target_type")::text || ',"verb":' || to_json(NEW."verb")::text || '}' ELSE '{"actor_agent_id":' || coalesce(NEW."actor_agent_id"::text, 'null') || ',"actor_label":' || '"' || NEW."actor_label" || '"' || ',"actor_type":' || '"' || NEW."actor_type" || '"' || ',"actor_user_id":' || coalesce(NEW."actor_user_id"::text, 'null') || ',"after":' || coalesce(NEW."after"::text, 'null') || ',"agent_id":' || coalesce(NEW."agent_id"::text, 'null') || ',"before":' || coalesce(NEW."before"::text, 'null') || ',"created_at":' || '"' || to_char(NEW."created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"' || ',"prev_hash":' || '"' || NEW."prev_hash" || '"' || ',"request_id":' || '"' || NEW."request_id" || '"' || ',"seq":' || coalesce(NEW."seq"::text, 'null') || ',"target_id":' || '"' || NEW."target_id" || '"' || ',"target_label":' || '"' || NEW."target_label" || '"' || ',"target_type":' || '"' || NEW."target_type" || '"' || ',"verb":' || '"' || NEW."verb" || '"' || '}' END,
               'UTF8')), 'hex')
      INTO v_follows, v_hashes
      FROM (SELECT 1) AS one
      LEFT JOIN LATERAL (
          SELECT e.seq, e.hash FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1
      ) AS h ON true;
    IF v_follows IS NOT TRUE THEN
        RAISE EXCEPTION 'audit log: seq % does not follow the chain head', NEW.seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_hashes IS NOT TRUE THEN
        RAISE EXCEPTION 'audit log: seq % does not hash to its hash', NEW.seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_check_insert
    BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_check_insert();
