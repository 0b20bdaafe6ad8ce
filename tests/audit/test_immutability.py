from __future__ import annotations

import pytest
from django.db import DatabaseError, connection

from oversight.audit.actors import Actor
from oversight.audit.db_roles import owner_cursor
from oversight.audit.models import AuditEvent, AuditLogImmutableError
from oversight.audit.services import audit_record
from tests.audit.helpers import record

pytestmark = pytest.mark.django_db


def test_the_orm_refuses_to_update_an_event() -> None:
    record(1)
    event = AuditEvent.objects.get()
    event.verb = "something.else"
    with pytest.raises(AuditLogImmutableError):
        event.save()
    with pytest.raises(AuditLogImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(verb="x")


def test_the_orm_refuses_to_delete_events() -> None:
    record(1)
    with pytest.raises(AuditLogImmutableError):
        AuditEvent.objects.get().delete()
    with pytest.raises(AuditLogImmutableError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1


def test_recording_outside_a_transaction_is_refused() -> None:
    # pytest-django wraps the test in a transaction; leave it to prove the check.
    with pytest.raises(RuntimeError, match="inside the transaction"):
        connection.in_atomic_block, saved = False, connection.in_atomic_block
        try:
            audit_record(actor=Actor.system("tests"), verb="x", target=("t", "1", "t"))
        finally:
            connection.in_atomic_block = saved


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # committed rows, for the owner's connection
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET verb = 'x'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
    ],
)
def test_postgres_refuses_changes_below_the_orm_even_to_the_tables_owner(sql: str) -> None:
    """The trigger: even the owner, who holds these privileges, is refused. (The runtime
    role the processes use lacks them: tests/audit/test_runtime_role.py.)"""
    record(2)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        owner_cursor(fallback=connection) as cursor,
    ):
        cursor.execute(sql)
    assert AuditEvent.objects.count() == 2
