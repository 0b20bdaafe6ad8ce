-- The engaged kill switch that halts an agent, if any: everything's, its team's or its own.
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
