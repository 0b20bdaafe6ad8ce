"""Reads about people and teams."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from oversight.accounts import roles
from oversight.accounts.models import Team


def team_list(*, user: Any) -> QuerySet[Team]:
    """Teams the user can see: all for admins, their own otherwise."""
    if roles.is_admin(user):
        return Team.objects.all()
    return Team.objects.filter(group__user=user)


def teams_for_new_agent(*, user: Any) -> QuerySet[Team]:
    """Teams the user may register an agent in."""
    return team_list(user=user)


def owner_candidates(*, user: Any) -> QuerySet[Any]:
    """Active users who may be named an agent's owner: admins may pick anyone."""
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    if roles.is_admin(user):
        return users
    return users.filter(pk=user.pk)


def team_for_reviewers(*, user: Any, slug: str) -> Team:
    """The team whose reviewers the user may manage: admins any team, owners their own.
    404 outside the team (nothing leaks); 403 for a member who is not an owner."""
    team = team_list(user=user).filter(slug=slug).first()
    refused = "Only the team's owners and admins choose its reviewers."
    if team is None:
        from oversight.agents.selectors import agents_with_perm  # agents -> accounts

        if agents_with_perm(user=user).filter(team__slug=slug).exists():
            raise PermissionDenied(refused)  # sees the team's page (some agents), no more
        raise Http404("No such team.")
    if not roles.has_role(user, roles.OWNER):
        raise roles.RoleRequired(refused)
    return team


def may_manage_reviewers(*, user: Any, team: Team) -> bool:
    if roles.is_admin(user):
        return True
    return roles.has_role(user, roles.OWNER) and team.members.filter(pk=user.pk).exists()
