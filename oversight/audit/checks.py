"""Deploy check: the role the processes connect as cannot change audit history.

`manage.py check --deploy` asks PostgreSQL what the connected role (DATABASE_URL's) may
do. The hash chain and the triggers only hold against a role that can neither switch the
triggers off nor own the tables (docs/decisions/0013-runtime-database-role.md).
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from oversight.audit.role_problems import role_problems

_HINT = (
    "Connect the processes as a runtime role that owns nothing, and let another role own "
    "the schema (DATABASE_OWNER_URL, `manage.py db_roles`; docs/deploy.md)."
)
_IDS = {"owner": "audit.W001", "superuser": "audit.W002", "bypass": "audit.W003"}


@register(Tags.security, deploy=True)
def check_runtime_role(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return runtime_role_warnings(connections[DEFAULT_DB_ALIAS])


def runtime_role_warnings(connection: Any) -> list[CheckMessage]:
    if connection.vendor != "postgresql":
        return []  # SQLite: the zero-install default, one process, no roles
    try:
        with connection.cursor() as cursor:
            return role_warnings(cursor)
    except DatabaseError as error:
        return [
            Warning(
                f"Could not ask the database what its role may do: {error}",
                hint="Run the check where the database can be reached.",
                id="audit.W004",
            )
        ]


def role_warnings(cursor: Any) -> list[CheckMessage]:
    """The warnings for the role ``cursor`` is connected as."""
    return [
        Warning(
            f"The database role can change audit history: {problem.text}.",
            hint=_HINT,
            id=_IDS[problem.kind],
        )
        for problem in role_problems(cursor)
    ]
