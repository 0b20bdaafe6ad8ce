"""Reads about people and teams."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

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
