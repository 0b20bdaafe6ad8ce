"""The runtime role (DATABASE_URL: web, worker, beat) cannot touch audit history.

bin/test runs the suite as the runtime role, on a test database the owner created,
migrated and granted, as in production. Each attempt below is what someone holding a
process's database credentials would try; PostgreSQL refuses each for want of privilege
(not the append-only trigger, which sits behind the privileges).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from oversight.agents.services import token_create
from oversight.audit.append_only import APPEND_ONLY_TABLES
from oversight.audit.db_roles import OWNER_ALIAS, has_owner_database, runtime_role
from oversight.audit.models import AuditEvent
from tests.audit.helpers import record
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, refund, refund_policy_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

REPLACEMENT = (
    "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$"
    " BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql"
)
ATTEMPTS = {
    # A row of one's own making (its hash not of its columns, or not after the head): the
    # runtime role appends only through audit_append, which hashes what it writes.
    "append a row of one's own": (
        "INSERT INTO audit_auditevent (seq, created_at, actor_type, actor_label, verb,"
        " target_type, target_id, target_label, request_id, prev_hash, hash)"
        " VALUES (1000, now(), 'user', 'evil', 'x.y', 't', '1', 't', '', 'a', 'b')",
        "permission denied for table",
    ),
    "update": ("UPDATE audit_auditevent SET verb = 'x'", "permission denied for table"),
    "delete": ("DELETE FROM audit_auditevent", "permission denied for table"),
    "truncate": ("TRUNCATE audit_auditevent", "permission denied for table"),
    "switch the triggers off": (
        "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
        "must be owner of table",
    ),
    "drop a trigger": ("DROP TRIGGER audit_no_update_delete ON audit_auditevent", "must be owner"),
    "drop the trigger function": (
        "DROP FUNCTION audit_refuse_change() CASCADE",
        "must be owner of function",
    ),
    # Refused for the schema (no CREATE) before ownership is even asked.
    "replace the trigger function": (REPLACEMENT, "permission denied for schema|must be owner"),
    "add a trigger of one's own": (
        "CREATE TRIGGER mine BEFORE INSERT ON audit_auditevent"
        " FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
        "permission denied for table",
    ),
    "switch all triggers off": (
        "SET session_replication_role = replica",
        "permission denied to set parameter",
    ),
    "take the table": ("ALTER TABLE audit_auditevent OWNER TO {runtime}", "must be owner"),
    "become the owner": ("SET ROLE {owner}", "permission denied to set role"),
    "drop the table": ("DROP TABLE audit_auditevent CASCADE", "must be owner"),
    "rewind the id sequence": (
        "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), 1)",
        "permission denied for sequence",
    ),
}


@pytest.fixture(autouse=True)
def _two_roles() -> None:
    if not has_owner_database():
        pytest.skip("needs the two roles: DATABASE_OWNER_URL (bin/test sets it)")


def test_the_tests_connect_as_the_runtime_role() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, session_user")
        assert cursor.fetchone() == (runtime_role(), runtime_role())
    assert runtime_role() != settings.DATABASES[OWNER_ALIAS]["USER"]


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_the_runtime_role_is_refused(attempt: str) -> None:
    record(2)
    sql, refusal = ATTEMPTS[attempt]
    owner = settings.DATABASES[OWNER_ALIAS]["USER"]
    with (
        pytest.raises(DatabaseError, match=refusal) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql.format(runtime=runtime_role(), owner=owner))
    assert refused.value.__cause__.sqlstate == "42501"  # insufficient_privilege
    assert "append-only" not in str(refused.value)  # the privileges, not the trigger
    assert list(AuditEvent.objects.values_list("verb", flat=True)) == ["test.event"] * 2


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
@pytest.mark.parametrize(
    "sql", ["UPDATE {table} SET id = id", "DELETE FROM {table}", "TRUNCATE {table}"]
)
def test_every_append_only_table_is_read_and_added_to_only(table: str, sql: str) -> None:
    with (
        pytest.raises(DatabaseError, match="permission denied for table") as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql.format(table=table))
    assert refused.value.__cause__.sqlstate == "42501"


def test_the_decision_path_still_records_its_audit_event(agent: Any) -> None:
    refund_policy_create(agent)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production", name="p")
    before = AuditEvent.objects.count()
    action = decide(token, refund(100))
    assert action.status == "allowed"
    assert AuditEvent.objects.filter(verb="action.decided", target_id=str(action.pk)).exists()
    assert AuditEvent.objects.count() == before + 1


def test_audit_append_runs_as_its_owner_and_only_for_the_runtime_role() -> None:
    """The runtime role's one way to append (it may not INSERT): PUBLIC, any other role of
    the database, may not execute it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.prosecdef, has_function_privilege(%s, p.oid, 'EXECUTE'), p.proacl::text"
            " FROM pg_proc p WHERE p.proname = 'audit_append'",
            [runtime_role()],
        )
        [(runs_as_owner, runtime_may, acl)] = cursor.fetchall()
    assert runs_as_owner and runtime_may
    assert not re.search(r"(^|[{,])=X/", acl), acl  # an entry for PUBLIC has no grantee
