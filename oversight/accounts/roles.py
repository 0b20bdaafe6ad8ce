"""Roles are Django groups with these names. Object access is guardian's business."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

ADMIN = "admin"
OWNER = "owner"
REVIEWER = "reviewer"
AUDITOR = "auditor"
ALL_ROLES = (ADMIN, OWNER, REVIEWER, AUDITOR)


def role_names(user: Any) -> frozenset[str]:
    """The user's roles, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_oversight_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        user._oversight_roles = cached
    return cached


def is_admin(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False)) or ADMIN in role_names(user)


def has_role(user: Any, role: str) -> bool:
    return is_admin(user) or role in role_names(user)


def can_read_audit_log(user: Any) -> bool:
    return is_admin(user) or AUDITOR in role_names(user)


def can_create_agents(user: Any) -> bool:
    return is_admin(user) or OWNER in role_names(user)


class RoleRequired(PermissionDenied):
    """Refused for want of a role (admin, owner, auditor): an admin gives roles, so the
    403 page says so, not that an agent's owner can grant access."""
