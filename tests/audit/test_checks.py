"""The deploy check on the role the processes connect as (oversight/audit/checks.py)."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.db import connection

from oversight.audit.checks import role_warnings, runtime_role_warnings
from oversight.audit.db_roles import has_owner_database, owner_cursor

pytestmark = pytest.mark.django_db


def test_it_is_silent_for_the_runtime_role_and_on_sqlite() -> None:
    """bin/test connects as the runtime role; SQLite has no roles."""
    if connection.vendor == "postgresql" and not has_owner_database():
        pytest.skip("a one-role PostgreSQL: the role the tests use owns the tables")
    assert runtime_role_warnings(connection) == []
    deploy = run_checks(include_deployment_checks=True)
    role_ids = {"audit.W001", "audit.W002", "audit.W003", "audit.W004"}
    assert [m for m in deploy if m.id in role_ids] == []


@pytest.mark.postgres
def test_it_warns_for_a_role_that_owns_the_audit_table() -> None:
    with owner_cursor(fallback=connection) as cursor:  # what a one-role set-up connects as
        warnings = role_warnings(cursor)
    ids = {warning.id for warning in warnings}
    assert "audit.W001" in ids
    owns = [warning.msg for warning in warnings if warning.id == "audit.W001"]
    assert any("owns audit_auditevent:" in msg for msg in owns), owns
    assert "audit.W003" in ids  # it owns the schema's tables and functions too
    assert any("audit_refuse_change()" in warning.msg for warning in warnings)
