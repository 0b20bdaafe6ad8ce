from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from oversight.audit.models import AuditEvent
from tests.audit.helpers import record, tamper
from tests.servers import ROOT, live_database_url

# Committed rows: on PostgreSQL, tamper() edits them as the owner, on a connection of its own.
pytestmark = pytest.mark.django_db(transaction=True)


def test_it_reports_an_intact_chain(capsys: pytest.CaptureFixture[str]) -> None:
    record(5)
    call_command("audit_verify")
    assert "intact: 5 events" in capsys.readouterr().out


def test_it_accepts_an_empty_log(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("audit_verify")
    assert "intact: 0 events" in capsys.readouterr().out


def test_it_names_a_row_edited_in_sql() -> None:
    record(5)
    tamper("UPDATE audit_auditevent SET actor_label = 'someone-else' WHERE seq = 3")
    with pytest.raises(CommandError, match=r"broken at seq 3: .*altered"):
        call_command("audit_verify")


def test_it_names_a_row_whose_json_was_edited_in_sql() -> None:
    record(4)
    event = AuditEvent.objects.get(seq=2)
    tamper("UPDATE audit_auditevent SET after = %s WHERE seq = 2", ['{"n": 1000}'])
    assert AuditEvent.objects.get(seq=2).after != event.after
    with pytest.raises(CommandError, match=r"broken at seq 2"):
        call_command("audit_verify")


def test_it_names_a_row_whose_hash_is_not_one() -> None:
    """A row written around the checks, its hash not even hex: named, not a traceback
    (the database's rehash decoded every hash and failed on this one)."""
    record(3)
    tamper(
        "INSERT INTO audit_auditevent (seq, created_at, actor_type, actor_label, verb,"
        " target_type, target_id, target_label, request_id, prev_hash, hash)"
        " VALUES (4, %s, 'user', 'evil', 'x.y', 't', '1', 't', '', 'a', 'b')",
        [timezone.now()],
    )
    with pytest.raises(CommandError, match=r"broken at seq 4"):
        call_command("audit_verify")


def test_it_names_the_gap_left_by_a_deleted_row() -> None:
    record(5)
    tamper("DELETE FROM audit_auditevent WHERE seq = 2")
    with pytest.raises(CommandError, match=r"broken at seq 3: expected seq 2"):
        call_command("audit_verify")


def test_it_names_rows_that_were_reordered() -> None:
    record(5)
    tamper("UPDATE audit_auditevent SET seq = seq + 1000 WHERE seq IN (2, 3)")
    tamper(
        "UPDATE audit_auditevent SET seq = CASE seq WHEN 1002 THEN 3 ELSE 2 END"
        " WHERE seq IN (1002, 1003)"
    )
    with pytest.raises(CommandError, match=r"broken at seq 2"):
        call_command("audit_verify")


def test_a_rehashed_edit_still_breaks_the_next_link() -> None:
    """An attacker who recomputes the edited row's hash still breaks its successor."""
    from oversight.audit.chain import compute_hash

    record(4)
    row = AuditEvent.objects.filter(seq=2).values().get()
    row["actor_label"] = "forged"
    tamper(
        "UPDATE audit_auditevent SET actor_label = 'forged', hash = %s WHERE seq = 2",
        [compute_hash(row)],
    )
    with pytest.raises(CommandError, match=r"broken at seq 3: prev_hash"):
        call_command("audit_verify")


@pytest.mark.postgres
def test_the_command_exits_non_zero_naming_the_seq() -> None:
    record(3)
    tamper("UPDATE audit_auditevent SET verb = 'agent.deleted' WHERE seq = 2")
    env = {"DATABASE_URL": live_database_url(), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "broken at seq 2" in result.stderr
