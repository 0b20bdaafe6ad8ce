"""PostgreSQL rehashes events from their columns (oversight/audit/rehash.py): its line must
be the verifier's for any value, and rows it cannot vouch for go to the verifier's rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from oversight.audit import verifier
from oversight.audit.actors import Actor
from oversight.audit.db_roles import owner_cursor
from oversight.audit.models import AuditEvent
from oversight.audit.rehash import canonical_line_sql, rows_rehashed
from oversight.audit.services import audit_record
from oversight.audit.verification import audit_log_verify
from tests.audit.helpers import tamper
from tests.audit.test_append import ODD

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LABELS = ['quote " backslash \\', "tab\tnewline\n", "\x00\x1f\x7f", "réfund 退款 🚀 \u2028", ""]


def _lines() -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, {canonical_line_sql()} FROM audit_auditevent")  # noqa: S608
        return dict(cursor.fetchall())


def test_the_database_rebuilds_every_line_as_the_verifier_does() -> None:
    for n, value in enumerate(ODD):
        label = LABELS[n % len(LABELS)].replace("\x00", "")  # PostgreSQL text has no NUL
        with transaction.atomic():
            audit_record(
                actor=Actor.system(label or "tests"),
                verb="test.rehash",
                target=("test.thing", label, label),
                before=value,
                after={"value": value, "label": label, "z": {"b": [1.5, -2], "a": None}},
                agent_id=None if n % 2 else 2**62,
            )
    lines = _lines()
    for row in AuditEvent.objects.order_by("seq").values(*verifier.HASHED_FIELDS, "hash"):
        assert lines[row["seq"]] == verifier.canonical_json(row)
    rows = list(rows_rehashed(batch_size=2))
    assert [ok for _seq, _prev, _hash, ok, _leaf in rows] == [True] * len(ODD)
    assert [leaf for *_, leaf in rows] == [verifier.leaf_hash(h) for _s, _p, h, *_ in rows]
    assert audit_log_verify().finding is None


def _append_as_written_before(before_text: str) -> dict[str, object]:
    """An event as rows written before audit migration 0006 are: hashed over the canonical
    text of its values, stored in another text of the same values (jsonb's)."""
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    row: dict[str, object] = {
        "seq": last["seq"] + 1 if last else 1,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
        "actor_type": "system",
        "actor_user_id": None,
        "actor_agent_id": None,
        "actor_label": "system:tests",
        "verb": "test.old",
        "target_type": "test.thing",
        "target_id": "1",
        "target_label": "thing",
        "agent_id": None,
        "request_id": "",
        "before": json.loads(before_text),
        "after": None,
        "prev_hash": last["hash"] if last else verifier.GENESIS_HASH,
    }
    row["hash"] = verifier.compute_hash(row)
    columns = [*verifier.HASHED_FIELDS, "hash"]
    values = [before_text if c == "before" else row[c] for c in columns]
    with owner_cursor(fallback=connection) as cursor:  # the runtime role may not INSERT
        cursor.execute(
            f"INSERT INTO audit_auditevent ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(columns))})",
            values,
        )
    return row


def test_rows_the_database_cannot_vouch_for_are_checked_by_the_verifier() -> None:
    with transaction.atomic():
        audit_record(actor=Actor.system("tests"), verb="test.new", target=("t", "1", "t"))
    _append_as_written_before('{"b": 1, "a": [2.50, "x"]}')  # keys and spaces as jsonb's
    with transaction.atomic():
        audit_record(actor=Actor.system("tests"), verb="test.new", target=("t", "2", "t"))
    assert [row[3] for row in rows_rehashed(batch_size=100)] == [True, False, True]
    outcome = audit_log_verify(batch_size=1)
    assert (outcome.checked, outcome.finding) == (3, None)

    # The same row changed: now the verifier's rules find it.
    tamper("UPDATE audit_auditevent SET before = %s WHERE seq = 2", ['{"b": 1, "a": [2.5, "y"]}'])
    finding = audit_log_verify().finding
    assert finding is not None and finding.code == verifier.EXIT_CHAIN and finding.seq == 2
    assert "content does not match its hash" in finding.message


def test_a_changed_column_is_never_vouched_for() -> None:
    with transaction.atomic():
        for i in range(3):
            audit_record(
                actor=Actor.system("tests"),
                verb="test.new",
                target=("t", str(i), "t"),
                after={"amount": i},
            )
    for sql in [
        "UPDATE audit_auditevent SET after = '{\"amount\":9}' WHERE seq = 2",
        "UPDATE audit_auditevent SET actor_label = 'system:other' WHERE seq = 2",
        "UPDATE audit_auditevent SET created_at = created_at + interval '1 microsecond'"
        " WHERE seq = 2",
    ]:
        tamper(sql)
        assert [row[3] for row in rows_rehashed(batch_size=100)] == [True, False, True], sql
        finding = audit_log_verify().finding
        assert finding is not None and finding.seq == 2, sql
