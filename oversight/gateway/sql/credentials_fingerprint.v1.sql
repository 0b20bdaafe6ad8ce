-- What a decision is made from, as one hash: the active token (all but its last_used_at,
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
