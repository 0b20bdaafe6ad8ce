"""The one way a view gets an agent for the person asking."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from oversight.agents.constants import CHANGE, AgentStatus
from oversight.agents.models import Agent
from oversight.agents.permissions import user_has_agent_perm
from oversight.agents.selectors import agent_get


class AgentAccessDenied(PermissionDenied):
    """Refused for want of access to one agent, which its owner or an admin can grant."""


class AgentRetired(PermissionDenied):
    """A change to a retired agent: nobody may make it, so no access to grant helps."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(
            f"{agent.name} is retired: it is kept read-only, with its history. Nobody"
            " changes it; its page, actions and audit stay readable."
        )


def get_agent_for_user(request: HttpRequest, slug: str, *, perm: str | None = None) -> Agent:
    """404 if the user may not see the agent at all, 403 if they may see but not ``perm``."""
    agent = agent_get(user=request.user, slug=slug)
    if perm == CHANGE and agent.status == AgentStatus.RETIRED:
        raise AgentRetired(agent)  # the 403 page says it in place of its general words
    if perm and not user_has_agent_perm(request.user, perm, agent):
        raise AgentAccessDenied("You may view this agent but not change it.")
    return agent
