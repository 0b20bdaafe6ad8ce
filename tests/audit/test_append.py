"""The appender (on PostgreSQL a database function) stores exactly what it hashes."""

from __future__ import annotations

import pytest
from django.db import transaction

from oversight.audit.actors import Actor
from oversight.audit.chain import compute_hash
from oversight.audit.models import AuditEvent
from oversight.audit.services import audit_record
from oversight.audit.verification import audit_chain_verify

ODD = [
    {"text": 'quotes " and \\ backslashes', "tab": "a\tb", "nl": "line\nline", "ctl": "\x01"},
    {"unicode": "réfund 退款 🚀", "nested": {"z": [1, 2.5, None, True], "a": {"": ""}}},
    ["a list", {"b": 1}],
    "just a string",
    12345678901234567890,
    None,
]


@pytest.mark.django_db(transaction=True)
def test_appended_events_hash_what_is_stored() -> None:
    returned = []
    for n, value in enumerate(ODD):
        with transaction.atomic():
            returned.append(
                audit_record(
                    actor=Actor.system("tests"),
                    verb="test.append",
                    target=("test.thing", str(n), f"thing «{n}»"),
                    before=value,
                    after={"value": value},
                    agent_id=7,
                )
            )
    stored = {event.seq: event for event in AuditEvent.objects.all()}
    for event in returned:
        row = stored[event.seq]
        assert (event.pk, event.hash, event.prev_hash) == (row.pk, row.hash, row.prev_hash)
        assert (row.before, row.after) == (event.before, event.after)
        fields = {f.attname: getattr(row, f.attname) for f in AuditEvent._meta.concrete_fields}
        assert compute_hash(fields) == row.hash
    assert [e.seq for e in returned] == list(range(1, len(ODD) + 1))
    assert audit_chain_verify() == (len(ODD), None)


@pytest.mark.django_db
@pytest.mark.parametrize("value", [1e16, 1.2345678901234567e20, 1.5e300, -0.0, 1e-7, 0.1 + 0.2])
def test_numbers_hash_as_the_database_gives_them_back(value: float) -> None:
    """jsonb keeps exact decimals without exponents: 1e16 is read back as an integer."""
    from django.core.management import call_command

    with transaction.atomic():
        audit_record(
            actor=Actor.system("tests"),
            verb="test.number",
            target=("test.thing", "1", "thing"),
            after={"amount": value, "nested": [{"x": value}]},
        )
    call_command("audit_verify")
