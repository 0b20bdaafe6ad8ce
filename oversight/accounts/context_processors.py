from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from oversight.accounts import roles as role_checks


def roles(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "is_admin": role_checks.is_admin(user),
        "can_read_audit_log": role_checks.can_read_audit_log(user),
        "can_create_agents": role_checks.can_create_agents(user),
    }
