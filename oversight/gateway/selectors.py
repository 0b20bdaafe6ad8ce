"""Reads of actions for the agent that owns them."""

from __future__ import annotations

import uuid

from oversight.agents.models import AgentToken
from oversight.gateway.exceptions import NotFoundError
from oversight.gateway.lifecycle import action_expire_if_due
from oversight.gateway.models import Action


def action_for_agent(*, token: AgentToken, action_id: uuid.UUID) -> Action:
    """The agent's own action, expired first if its time is up. Another agent's: 404."""
    action = Action.objects.filter(pk=action_id, agent_id=token.agent_id).first()
    if action is None:
        raise NotFoundError("No such action.")
    return action_expire_if_due(action=action)
