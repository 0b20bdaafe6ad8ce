"""Reads of actions for the agent that owns them."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch, prefetch_related_objects

from oversight.agents.models import AgentToken
from oversight.gateway.exceptions import NotFoundError
from oversight.gateway.lifecycle import action_expire_if_due
from oversight.gateway.models import Action
from oversight.gateway.reads import action_of_token


def action_for_agent(*, token: AgentToken, action_id: uuid.UUID) -> Action:
    """The agent's own action, expired first if its time is up. Another agent's: 404."""
    action = action_of_token(token=token, action_id=action_id)
    if action is None:
        raise NotFoundError("No such action.")
    return action_expire_if_due(action=action)


def action_with_votes_for_agent(*, token: AgentToken, action_id: uuid.UUID) -> Action:
    """``action_for_agent`` with its votes and voters, read now (an async caller may not
    read them later)."""
    action = action_for_agent(token=token, action_id=action_id)
    votes = Prefetch("votes", queryset=action.votes.model.objects.select_related("voter"))
    prefetch_related_objects([action], votes)
    return action
