"""What management commands share."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from oversight.audit.actors import Actor


def command_actor(username: str, system_name: str) -> Actor:
    """Who a command acts as: the active person named (``--user``), else the system."""
    if not username:
        return Actor.system(system_name)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"No active user {username!r}.")
    return Actor.for_user(user)
