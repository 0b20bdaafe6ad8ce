"""Bearer-token authentication of agents: a hashed lookup, one query."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from oversight.agents import tokens
from oversight.agents.constants import AgentStatus
from oversight.agents.models import AgentToken

# last_used_at is written at most this often per token, not on every request.
_TOUCH_EVERY = dt.timedelta(seconds=60)


class AgentUnavailableError(Exception):
    """The token is valid but its agent may not act (paused or retired): HTTP 403."""


def token_authenticate(raw: str) -> AgentToken | None:
    """The active token with its agent and team, or None (HTTP 401).

    Raises AgentUnavailableError when the agent is paused or retired.
    """
    if not raw or len(raw) > 200:
        return None
    token = (
        AgentToken.objects.select_related("agent", "agent__team", "agent__owner")
        .filter(token_hash=tokens.token_hash(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    if token.agent.status != AgentStatus.ACTIVE:
        raise AgentUnavailableError(f"Agent {token.agent.slug} is {token.agent.status}.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        AgentToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
