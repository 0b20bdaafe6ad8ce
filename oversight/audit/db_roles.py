"""Two PostgreSQL roles: an owner that changes the schema, a runtime role that cannot
touch audit history.

- The **owner** (DATABASE_OWNER_URL, given to the release step only) owns the schema, runs
  `migrate --database owner` and grants.
- The **runtime role** (DATABASE_URL: web, worker, beat) owns nothing. It may SELECT,
  INSERT, UPDATE and DELETE on every table but those in APPEND_ONLY_TABLES, where it may
  only SELECT and INSERT, and only SELECT on those in APPENDED_THROUGH_FUNCTION (audit
  events: it appends them through audit_append, which runs as the owner); it may use
  every sequence and execute every function. Owning nothing, it cannot alter a table,
  switch its triggers off, or drop or replace the functions they call.

The grants follow every `migrate --database owner` (``grants_after_migrate``, a
post_migrate receiver), so a table a later migration creates gets its privileges in the
same release. There are no default privileges: between its migration and the grants a
new table is closed to the runtime role, never open. docs/decisions/0013 says why.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

from oversight.audit.append_only import APPEND_ONLY_TABLES, APPENDED_THROUGH_FUNCTION
from oversight.audit.role_problems import RoleProblem, role_problems

OWNER_ALIAS = "owner"


def ident(name: str) -> str:
    """``name`` as a PostgreSQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def has_owner_database() -> bool:
    return OWNER_ALIAS in settings.DATABASES


def runtime_role() -> str:
    """The role the processes connect as (DATABASE_URL's user)."""
    return settings.DATABASES["default"]["USER"]


def setup_sql(*, owner: str, runtime: str, database: str) -> str:
    """What a superuser runs once (with psql): the two roles, the database and its schema.
    Safe to run again; on a database that one role used to own, that role's objects pass
    to the owner."""
    o, r, db = ident(owner), ident(runtime), ident(database)
    return f"""\
-- Oversight's database roles. Run once as a superuser, with psql (\\gexec, \\connect):
--   python manage.py db_roles sql | psql "postgres://postgres@HOST:5432/postgres"
-- then give each role a password: \\password {o}  and  \\password {r}
-- The owner owns the schema and runs migrations: DATABASE_OWNER_URL, release step only.
-- The runtime role is what the web, worker and beat processes use: DATABASE_URL.
SELECT format('CREATE ROLE %I LOGIN', name)
  FROM (VALUES ({_literal(owner)}), ({_literal(runtime)})) AS wanted (name)
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name)\\gexec
ALTER ROLE {r} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
SELECT format('CREATE DATABASE %I OWNER %I', {_literal(database)}, {_literal(owner)})
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {_literal(database)})\\gexec
ALTER DATABASE {db} OWNER TO {o};
\\connect {db}
-- Whatever the runtime role owns here (a database one role used to own) passes to the owner.
REASSIGN OWNED BY {r} TO {o};
ALTER SCHEMA public OWNER TO {o};
-- Before PostgreSQL 15 every role may create objects in public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
"""  # noqa: S608 (names quoted by ident and _literal)


def grant_statements(
    *, runtime: str, schema: str = "public", append_only: Sequence[str] = APPEND_ONLY_TABLES
) -> list[str]:
    """The runtime role's privileges, exactly: run as the owner, in one transaction (the
    runtime role never sees the tables between the REVOKE and the GRANT)."""
    r, s = ident(runtime), ident(schema)
    statements = [
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
    ]
    for table in append_only:
        t = f"{s}.{ident(table)}"
        privileges = "SELECT" if table in APPENDED_THROUGH_FUNCTION else "SELECT, INSERT"
        statements += [f"REVOKE ALL ON {t} FROM {r}", f"GRANT {privileges} ON {t} TO {r}"]
    return [
        *statements,
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        f"GRANT EXECUTE ON ALL ROUTINES IN SCHEMA {s} TO {r}",  # functions and procedures
    ]


class UnsafeRuntimeRoleError(ImproperlyConfigured):
    """The runtime role could change audit history whatever it is granted."""

    def __init__(self, problems: list[RoleProblem]) -> None:
        self.problems = problems
        super().__init__(
            "The runtime role (DATABASE_URL) could change audit history:\n"
            + "\n".join(f"- {problem.text}" for problem in problems)
        )


def runtime_role_grant(
    *, cursor: Any, runtime: str, append_only: Sequence[str] = APPEND_ONLY_TABLES
) -> list[str]:
    """Grant ``runtime`` its privileges in the schema in use, in the caller's transaction,
    as the owner; idempotent. Then inspect it: UnsafeRuntimeRoleError (the caller's
    transaction rolls back) if it could still change history, a superuser say. Returns
    the append-only tables found (one listed before its migration has run is left for
    the grants after that migration)."""
    cursor.execute(
        "SELECT current_schema(), array(SELECT t FROM unnest(%s::text[]) AS t"
        " WHERE to_regclass(t) IS NOT NULL ORDER BY t)",
        [list(append_only)],
    )
    schema, existing = cursor.fetchone()
    for statement in grant_statements(runtime=runtime, schema=schema, append_only=existing):
        cursor.execute(statement)
    problems = role_problems(cursor, role=runtime, append_only=append_only)
    if problems:
        raise UnsafeRuntimeRoleError(problems)
    return list(existing)


@contextmanager
def owner_cursor(*, fallback: Any = None) -> Iterator[Any]:
    """A cursor as the owner, in a transaction that commits when the block ends, on a
    connection of its own (DATABASE_OWNER_URL's, opened for the block and closed after),
    never one that Django shares with the application's threads. Without an owner
    database, ``fallback``'s (a connection whose role owns the tables, as in a one-role
    development set-up); without either, ImproperlyConfigured."""
    if not has_owner_database():
        if fallback is None:
            raise ImproperlyConfigured("DATABASE_OWNER_URL is not set.")
        with transaction.atomic(using=fallback.alias), fallback.cursor() as cursor:
            yield cursor
        return
    # Django's parameters (timeouts, the URL's options, its cursor class: %s placeholders)
    # and its exceptions (django.db's), on a psycopg connection of the block's own.
    configured = connections[OWNER_ALIAS]  # never connected itself
    with (
        configured.wrap_database_errors,
        psycopg.connect(**configured.get_connection_params()) as owner,
        owner.transaction(),
        owner.cursor() as cursor,
    ):
        yield cursor


def grants_after_migrate(sender: Any, *, using: str, verbosity: int = 1, **kwargs: Any) -> None:
    """post_migrate: after `migrate --database owner`, grant the runtime role."""
    if using != OWNER_ALIAS or connections[using].vendor != "postgresql":
        return
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        tables = runtime_role_grant(cursor=cursor, runtime=runtime_role())
    stdout = kwargs.get("stdout")
    if verbosity >= 1 and stdout is not None:
        stdout.write(f"  Granted {runtime_role()}; append-only: {', '.join(tables) or 'none'}")
