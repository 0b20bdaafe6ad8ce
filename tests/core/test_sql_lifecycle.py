"""The database functions' SQL has a lifecycle: versioned files, frozen migrations, and a
database whose definitions are compared with the files (oversight/lib/sql_source.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from oversight.audit.append_sql import APPEND_LOCK_KEY
from oversight.audit.chain import GENESIS_HASH
from oversight.audit.db_roles import owner_cursor
from oversight.gateway.record_sql import SWITCH_LOCK_KEY
from oversight.lib.sql_source import functions_created, sql_sources
from tests.servers import ROOT, scratch_database

SOURCES = sql_sources()
FUNCTIONS = {name: source for source in SOURCES for name in source.functions}


def _migrations_in_order() -> list[tuple[str, str, str]]:
    """(app, name, source text) of every migration of ours, in an order the graph allows."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    order: list[tuple[str, str]] = []
    for leaf in sorted(loader.graph.leaf_nodes()):
        for node in loader.graph.forwards_plan(leaf):
            if node not in order:
                order.append(node)
    found = []
    for app, name in order:
        module = import_module(loader.graph.nodes[(app, name)].__module__)
        if module.__name__.startswith("oversight."):
            found.append((app, name, Path(module.__file__ or "").read_text(encoding="utf-8")))
    return found


def test_sql_files_are_versioned_one_per_function() -> None:
    names = [(source.app, source.name) for source in SOURCES]
    assert len(names) == len(set(names)), "one current version per file name"
    assert len(FUNCTIONS) == sum(len(source.functions) for source in SOURCES)
    assert {"decision_record", "limits_charge", "audit_append"} <= set(FUNCTIONS)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_newest_migration_defining_a_function_carries_its_file(function: str) -> None:
    """Editing a file without a migration, or a migration without the file, fails here."""
    defining = [
        (app, name, text)
        for app, name, text in _migrations_in_order()
        if function in functions_created(text)
    ]
    assert defining, f"no migration creates {function}"
    app, name, text = defining[-1]
    assert FUNCTIONS[function].text in text, (
        f"{app}.{name} is the newest migration creating {function}, and it does not carry "
        f"{FUNCTIONS[function].path.name}: add a migration with a copy of the new version"
    )


def test_migrations_import_no_sql_from_the_code() -> None:
    for app, name, text in _migrations_in_order():
        imports = re.findall(r"^from (oversight\.\S+) import", text, flags=re.M)
        assert set(imports) <= {"oversight.lib.pg_migrations"}, (app, name, imports)


def test_the_sources_name_the_constants_python_uses() -> None:
    assert f"pg_advisory_xact_lock({APPEND_LOCK_KEY})" in FUNCTIONS["audit_append"].text
    assert GENESIS_HASH in FUNCTIONS["audit_append"].text
    assert f"pg_advisory_xact_lock_shared({SWITCH_LOCK_KEY})" in FUNCTIONS["decision_record"].text


# --- PostgreSQL: what is deployed -------------------------------------------------------


def _definitions(cursor, schema: str) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    cursor.execute(
        "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s AND p.proname = ANY(%s) ORDER BY p.proname, p.oid",
        [schema, list(FUNCTIONS)],
    )
    found: dict[str, list[str]] = {}
    for name, definition in cursor.fetchall():
        found.setdefault(name, []).append(definition.replace(f"{schema}.", "SCHEMA."))
    return found


def _function_statements(text: str) -> str:
    """The file without its trigger statements (a scratch copy needs only the functions
    and procedures)."""
    return "\n".join(
        re.findall(
            r"CREATE OR REPLACE (?:FUNCTION|PROCEDURE) .*?\$\$ LANGUAGE [a-z]+ ?[A-Z]*;",
            text,
            re.S,
        )
    )


def assert_deployed_is_the_source(cursor) -> None:  # type: ignore[no-untyped-def]
    """Each function exists once (no stale overload), defined exactly as its file."""
    deployed = _definitions(cursor, "public")
    scratch = f"sql_source_{uuid.uuid4().hex[:8]}"
    cursor.execute(f"CREATE SCHEMA {scratch}")
    try:
        cursor.execute(f"SET search_path = {scratch}, public")
        for source in SOURCES:
            cursor.execute(_function_statements(source.text))
        expected = _definitions(cursor, scratch)
    finally:
        cursor.execute("SET search_path = public")
        cursor.execute(f"DROP SCHEMA {scratch} CASCADE")
    assert sorted(deployed) == sorted(FUNCTIONS)
    for name in FUNCTIONS:
        assert len(deployed[name]) == 1, f"{name} has {len(deployed[name])} overloads"
        assert deployed[name] == expected[name], f"{name} differs from its file"
    cursor.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass"
        " AND NOT tgisinternal ORDER BY tgname"
    )
    assert [row[0] for row in cursor.fetchall()] == ["audit_no_truncate", "audit_no_update_delete"]


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_deployed_functions_are_the_sources() -> None:
    with owner_cursor(fallback=connection) as cursor:  # a scratch schema: the owner's to create
        assert_deployed_is_the_source(cursor)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty database on the test server, and its URL, as the owner (one role here)."""
    with scratch_database("oversight_migrate") as (name, server):
        yield f"{server}/{name}"


def _migrate(url: str, *target: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1"}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_OWNER_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", *target, "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _functions_of(url: str) -> dict[str, tuple[str, int, str, str]]:
    """{name: (language, number of arguments, result, kind)} as deployed in ``url``; kind
    is "f" for a function, "p" for a procedure (whose arguments count its OUT ones)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT p.proname, l.lanname, p.pronargs, pg_get_function_result(p.oid), p.prokind"
            " FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
            " JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.proname = ANY(%s)",
            [list(FUNCTIONS)],
        ).fetchall()
    return {name: (language, nargs, result, kind) for name, language, nargs, result, kind in rows}


@pytest.mark.slow
@pytest.mark.postgres
def test_a_fresh_database_migrated_step_by_step_has_each_steps_sql(fresh_database: str) -> None:
    _migrate(fresh_database, "policy", "0002")
    assert _functions_of(fresh_database)["limits_charge"][0] == "sql"  # version 1
    _migrate(fresh_database, "policy", "0003")
    assert _functions_of(fresh_database)["limits_charge"][0] == "plpgsql"  # version 2
    _migrate(fresh_database, "gateway", "0003")
    functions = _functions_of(fresh_database)
    assert functions["decision_record"][1] == 25  # version 1: no credentials
    assert "credentials_fingerprint" not in functions
    _migrate(fresh_database, "gateway", "0004")
    assert _functions_of(fresh_database)["decision_record"][1] == 27  # version 2
    assert "found" not in _functions_of(fresh_database)["decision_record"][2]
    _migrate(fresh_database, "gateway", "0016")
    functions = _functions_of(fresh_database)
    assert functions["decision_record"][1] == 28  # version 5: p_commit_async
    assert functions["decision_record"][2].startswith("TABLE(found text")  # versions 3 to 5
    assert functions["decision_record"][3] == "f"
    _migrate(fresh_database, "gateway", "0027")
    functions = _functions_of(fresh_database)
    assert functions["decision_record"][3] == "p"  # version 6: a procedure
    assert functions["decision_record"][1] == 28  # the same inputs; its answer is OUT ones
    assert functions["audit_append"][1] == 16  # version 2: the caller's canonical text
    _migrate(fresh_database)
    functions = _functions_of(fresh_database)
    assert functions["decision_record"][1] == 25  # version 7: the audit event's columns
    assert functions["audit_append"][1] == 13  # version 3: it builds the text itself
    import psycopg

    with psycopg.connect(fresh_database) as conn, conn.cursor() as cursor:
        assert_deployed_is_the_source(cursor)
    _migrate(fresh_database, "gateway", "0004")  # and back: version 2 again
    functions = _functions_of(fresh_database)
    assert functions["decision_record"][1] == 27
    assert "credentials_fingerprint" not in functions
