"""Who may do what to an agent, expressed as guardian object permissions.

The owner holds view and change; the team's group holds view; the team's
reviewers' group holds view and approve. Reviewers and auditors are granted
view (and reviewers approve) per agent. Admins pass every check without object
permissions (who may decide a held action is narrower: see
oversight/approvals/eligibility.py).
"""

from __future__ import annotations

from typing import Any

from guardian.shortcuts import assign_perm, remove_perm

from oversight.accounts import roles
from oversight.agents.constants import APPROVE, CHANGE, VIEW, AgentStatus
from oversight.agents.models import Agent, AgentGroupObjectPermission, AgentUserObjectPermission

OWNER_PERMS = (VIEW, CHANGE)
TEAM_PERMS = (VIEW,)
TEAM_REVIEWER_PERMS = (VIEW, APPROVE)


def grant_owner(agent: Agent, user: Any) -> None:
    for perm in OWNER_PERMS:
        assign_perm(perm, user, agent)


def revoke_owner(agent: Agent, user: Any) -> None:
    for perm in OWNER_PERMS:
        remove_perm(perm, user, agent)


def grant_team(agent: Agent) -> None:
    for perm in TEAM_PERMS:
        assign_perm(perm, agent.team.group, agent)
    if agent.team.reviewers_group_id is not None:
        grant_team_reviewers(agent, agent.team.reviewers_group)


def revoke_team(agent: Agent, team: Any) -> None:
    for perm in TEAM_PERMS:
        remove_perm(perm, team.group, agent)
    if team.reviewers_group_id is not None:
        for perm in TEAM_REVIEWER_PERMS:
            remove_perm(perm, team.reviewers_group, agent)


def grant_team_reviewers(agent: Agent, group: Any) -> None:
    """The team's reviewers may view and decide the agent's held actions."""
    for perm in TEAM_REVIEWER_PERMS:
        assign_perm(perm, group, agent)


def user_agent_perms(agent: Agent, user: Any) -> list[str]:
    """Permissions granted to the user directly (not through groups) on the agent."""
    return list(
        AgentUserObjectPermission.objects.filter(user=user, content_object=agent).values_list(
            "permission__codename", flat=True
        )
    )


def user_has_agent_perm(user: Any, perm: str, agent: Agent) -> bool:
    """One database query, no per-request cache to go stale. A retired agent is read-only:
    nobody may change it any more, admins included."""
    if perm == CHANGE and agent.status == AgentStatus.RETIRED:
        return False
    return _granted(user, perm, agent)


def user_may_record_outcomes(user: Any, agent: Agent) -> bool:
    """Whether ``user`` may record how the agent's actions ended when the agent never said
    (gateway/settling.py): its owners and the admins, retired or not. Retiring leaves the
    actions that may have run as they are, and the agent can no longer report them; saying
    what happened to them records the past, it does not change the agent."""
    return _granted(user, CHANGE, agent)


def _granted(user: Any, perm: str, agent: Agent) -> bool:
    if not getattr(user, "is_active", False):
        return False
    if roles.is_admin(user):
        return True
    direct = AgentUserObjectPermission.objects.filter(
        user=user, content_object=agent, permission__codename=perm
    )
    via_group = AgentGroupObjectPermission.objects.filter(
        group__user=user, content_object=agent, permission__codename=perm
    )
    return direct.exists() or via_group.exists()


def users_with_agent_perm(agent: Agent, perm: str) -> list[Any]:
    """The active people who may ``perm`` the agent: granted directly or through a group,
    and the admins."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    granted = Q(
        agentuserobjectpermission__content_object=agent,
        agentuserobjectpermission__permission__codename=perm,
    ) | Q(
        groups__agentgroupobjectpermission__content_object=agent,
        groups__agentgroupobjectpermission__permission__codename=perm,
    )
    admins = Q(groups__name=roles.ADMIN) | Q(is_superuser=True)
    return list(get_user_model().objects.filter(granted | admins, is_active=True).distinct())
