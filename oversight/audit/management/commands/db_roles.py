"""The owner and runtime database roles (oversight/audit/db_roles.py).

    manage.py db_roles sql            # the one-time set-up, for a superuser (psql)
    manage.py db_roles sql --grants   # the runtime role's grants, for reading
    manage.py db_roles apply          # grant them now, as the owner (DATABASE_OWNER_URL)

`migrate --database owner` applies the grants after every migration; `apply` is the same
step by hand. Role and database names default to DATABASE_URL's and DATABASE_OWNER_URL's.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from oversight.audit.db_roles import (
    OWNER_ALIAS,
    UnsafeRuntimeRoleError,
    grant_statements,
    has_owner_database,
    owner_cursor,
    runtime_role,
    runtime_role_grant,
    setup_sql,
)


class Command(BaseCommand):
    help = "Print the database roles' set-up SQL, or grant the runtime role as the owner."

    def add_arguments(self, parser: CommandParser) -> None:
        modes = parser.add_subparsers(dest="mode", required=True)
        sql = modes.add_parser("sql", help="print SQL: the set-up, or with --grants the grants")
        sql.add_argument("--grants", action="store_true", help="the grants, not the set-up")
        sql.add_argument("--owner", help="owner role (default: DATABASE_OWNER_URL's user)")
        sql.add_argument("--runtime", help="runtime role (default: DATABASE_URL's user)")
        sql.add_argument("--database", help="database name (default: DATABASE_URL's)")
        modes.add_parser("apply", help="grant the runtime role, connected as the owner")

    def handle(self, *args: Any, mode: str, **options: Any) -> None:
        if mode == "sql":
            self._print_sql(**options)
        else:
            self._apply()

    def _print_sql(self, **options: Any) -> None:
        runtime = options["runtime"] or self._setting("default", "USER", "--runtime")
        if options["grants"]:
            statements = "".join(f"{sql};\n" for sql in grant_statements(runtime=runtime))
            self.stdout.write("-- The runtime role's privileges: as the owner, after migrate.")
            self.stdout.write(f"BEGIN;\n{statements}COMMIT;")
            return
        owner = options["owner"] or self._setting(OWNER_ALIAS, "USER", "--owner")
        database = options["database"] or self._setting("default", "NAME", "--database")
        self.stdout.write(setup_sql(owner=owner, runtime=runtime, database=database), ending="")

    def _apply(self) -> None:
        if not has_owner_database():
            raise CommandError("DATABASE_OWNER_URL is not set: grants are the owner's to give.")
        try:
            with owner_cursor() as cursor:
                tables = runtime_role_grant(cursor=cursor, runtime=runtime_role())
        except UnsafeRuntimeRoleError as error:
            raise CommandError(f"Nothing granted. {error}") from error
        self.stdout.write(f"Granted {runtime_role()}; append-only: {', '.join(tables) or 'none'}")

    def _setting(self, alias: str, key: str, option: str) -> str:
        database = settings.DATABASES.get(alias, {})
        if database.get("ENGINE") != "django.db.backends.postgresql" or not database.get(key):
            raise CommandError(f"Give {option}: no PostgreSQL {key.lower()} configured for it.")
        return database[key]
