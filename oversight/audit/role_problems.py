"""What lets a database role change audit history, read from PostgreSQL's catalogs.

One implementation for the deploy check (the role the processes connect as) and for the
grants after migrate (the runtime role, inspected by the owner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from oversight.audit.append_only import APPEND_ONLY_TABLES, APPENDED_THROUGH_FUNCTION

# Table privileges that change rows already written, or let a trigger of one's own in.
_CHANGING = ["UPDATE", "DELETE", "TRUNCATE", "TRIGGER"]


@dataclass(frozen=True)
class RoleProblem:
    # superuser: can do anything; owner: owns (or may act as the owner of) an append-only
    # table; bypass: any other way around the privileges or the triggers.
    kind: Literal["superuser", "owner", "bypass"]
    text: str


def role_problems(
    cursor: Any, *, role: str | None = None, append_only: Sequence[str] = APPEND_ONLY_TABLES
) -> list[RoleProblem]:
    """Every way ``role`` (default: the connected one) could change the append-only
    tables, in the schema in use; empty for a proper runtime role."""
    cursor.execute(
        "SELECT rolname, rolsuper, rolcreaterole,"
        " current_setting('server_version_num')::int >= 150000"
        " FROM pg_roles WHERE rolname = COALESCE(%s, current_user)",
        [role],
    )
    row = cursor.fetchone()
    if row is None:
        return [RoleProblem("bypass", f'role "{role}" does not exist')]
    name, superuser, createrole, has_parameter_privileges = row
    if superuser:
        return [
            RoleProblem(
                "superuser",
                f'role "{name}" is a superuser: it can switch the audit'
                " triggers off and rewrite history",
            )
        ]
    args = {
        "role": name,
        "tables": list(append_only),
        "changing": _CHANGING,
        "through_function": list(APPENDED_THROUGH_FUNCTION),
    }
    problems = [*_table_problems(cursor, args), *_ownership_problems(cursor, args)]
    if createrole:
        problems.append(
            RoleProblem("bypass", f'role "{name}" has CREATEROLE: it may grant itself other roles')
        )
    if has_parameter_privileges:  # before PostgreSQL 15 only superusers may set it
        cursor.execute(
            "SELECT has_parameter_privilege(%s, 'session_replication_role', 'SET')", [name]
        )
        if cursor.fetchone()[0]:
            problems.append(
                RoleProblem(
                    "bypass",
                    f'role "{name}" may SET session_replication_role, which switches triggers off',
                )
            )
    return problems


def _table_problems(cursor: Any, args: dict[str, Any]) -> list[RoleProblem]:
    cursor.execute(
        """
        SELECT c.relname, pg_get_userbyid(c.relowner),
               pg_has_role(%(role)s, c.relowner, 'MEMBER'),
               array(SELECT p FROM unnest(%(changing)s::text[]) AS p
                     WHERE has_table_privilege(%(role)s, c.oid, p)),
               c.relname = ANY(%(through_function)s::text[])
                 AND has_table_privilege(%(role)s, c.oid, 'INSERT'),
               array(SELECT DISTINCT f.oid::regprocedure::text
                       FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid
                      WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
                        AND pg_has_role(%(role)s, f.proowner, 'MEMBER'))
          FROM unnest(%(tables)s::text[]) AS name JOIN pg_class c ON c.oid = to_regclass(name)
         ORDER BY c.relname
        """,
        args,
    )
    role, problems = args["role"], []
    for table, owner, acts_as_owner, privileges, inserts, functions in cursor.fetchall():
        if acts_as_owner:
            who = "owns" if owner == role else f'may act as the owner ("{owner}") of'
            text = f'role "{role}" {who} {table}: it can alter it and its triggers'
            problems.append(RoleProblem("owner", text))
        if privileges:
            problems.append(
                RoleProblem(
                    "bypass",
                    f'role "{role}" has {", ".join(privileges)} on {table}, which is append-only',
                )
            )
        if inserts:
            function = APPENDED_THROUGH_FUNCTION[table]
            problems.append(
                RoleProblem(
                    "bypass",
                    f'role "{role}" may INSERT into {table}, which takes rows only through'
                    f" {function}: it could add one that does not follow the chain",
                )
            )
        problems += [
            RoleProblem(
                "bypass",
                f'role "{role}" may replace or drop {function}, which the triggers of {table} call',
            )
            for function in functions
        ]
    return problems


def _ownership_problems(cursor: Any, args: dict[str, Any]) -> list[RoleProblem]:
    """A runtime role owns nothing and creates nothing."""
    cursor.execute(
        """
        SELECT n.nspname,
               (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid
                   AND pg_has_role(%(role)s, c.relowner, 'MEMBER'))
               + (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid
                   AND pg_has_role(%(role)s, p.proowner, 'MEMBER')),
               pg_has_role(%(role)s, n.nspowner, 'MEMBER'),
               has_schema_privilege(%(role)s, n.oid, 'CREATE'),
               (SELECT pg_has_role(%(role)s, d.datdba, 'MEMBER') FROM pg_database d
                 WHERE d.datname = current_database())
          FROM pg_namespace n WHERE n.nspname = current_schema()
        """,
        args,
    )
    row = cursor.fetchone()
    if row is None:  # no schema in the search path exists
        return []
    schema, owned, owns_schema, may_create, owns_database = row
    role, found = args["role"], []
    if owns_database:
        found.append("owns the database")
    if owns_schema:
        found.append(f"owns schema {schema}")
    if owned:
        found.append(f"owns {owned} tables, sequences or functions in {schema}")
    if may_create and not owns_schema:
        found.append(f"may create objects in schema {schema}")
    return [RoleProblem("bypass", f'role "{role}" {text}') for text in found]
