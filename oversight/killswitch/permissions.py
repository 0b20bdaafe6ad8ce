"""Who may press which kill switch."""

from __future__ import annotations

from typing import Any

from oversight.accounts import roles
from oversight.agents.constants import CHANGE
from oversight.agents.permissions import user_has_agent_perm
from oversight.killswitch.models import Scope
from oversight.killswitch.selectors import Target


def can_press(user: Any, target: Target) -> bool:
    """Everything: admins. A team: admins and owners in the team. An agent: admins and
    whoever may change it (its owner)."""
    if roles.is_admin(user):
        return True
    if target.scope == Scope.TEAM and target.team is not None:
        return roles.has_role(user, roles.OWNER) and target.team.members.filter(pk=user.pk).exists()
    if target.scope == Scope.AGENT and target.agent is not None:
        return user_has_agent_perm(user, CHANGE, target.agent)
    return False
