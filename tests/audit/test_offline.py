"""What an auditor does on another machine: verify an export or an evidence bundle with
verify.py alone (no Django, no Oversight)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from oversight.audit import signing, sinks, verifier
from oversight.audit.bundle import bundle_build
from oversight.audit.checkpoints import checkpoint_write
from oversight.audit.export import COLUMNS
from oversight.audit.models import AuditCheckpoint, AuditEvent
from oversight.audit.selectors import AuditFilters
from oversight.audit.verification import audit_log_verify
from tests.audit.helpers import append_as_sent, record

pytestmark = pytest.mark.django_db

# Run verify.py with the project made unimportable: it must need nothing of it.
_ISOLATED = (
    "import runpy, sys; sys.modules['django'] = None; sys.modules['oversight'] = None; "
    "sys.argv = ['verify.py', *sys.argv[1:]]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _run_verify(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-c", _ISOLATED, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def sink_dir(tmp_path: Path, settings: Any) -> Path:
    folder = tmp_path / "checkpoints"
    settings.AUDIT_CHECKPOINT_SINKS = [f"dir:{folder}"]
    return folder


def _checkpoint() -> None:
    checkpoint = checkpoint_write()
    assert checkpoint is not None
    for delivery in checkpoint.deliveries.all():
        sinks.checkpoint_deliver(delivery_id=delivery.pk)


def _export(path: Path) -> None:
    with path.open("w") as handle:
        for event in AuditEvent.objects.order_by("-seq"):
            row = {name: getattr(event, name) for name in COLUMNS}
            row["created_at"] = verifier.timestamp_text(event.created_at)
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _auditor_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "auditor"
    folder.mkdir()
    (folder / "verify.py").write_text(Path(verifier.__file__).read_text())
    (folder / "key.pem").write_text(signing.public_key_pem())
    return folder


def test_an_export_verifies_offline_and_a_deleted_tail_does_not(
    tmp_path: Path, sink_dir: Path
) -> None:
    record(12)
    _checkpoint()
    folder = _auditor_folder(tmp_path)
    _export(folder / "events.jsonl")
    args = ("export", "events.jsonl", "--checkpoints", str(sink_dir), "--public-key", "key.pem")
    result = _run_verify(folder, *args)
    assert result.returncode == 0, result.stderr
    assert "Verified: 12 events against 1 checkpoints" in result.stdout
    lines = (folder / "events.jsonl").read_text().splitlines()
    (folder / "events.jsonl").write_text("\n".join(lines[2:]) + "\n")  # newest first: 12, 11
    result = _run_verify(folder, *args)
    assert result.returncode == verifier.EXIT_CHECKPOINT
    assert "first bad seq: 11" in result.stderr and "checkpoint: #1" in result.stderr


def test_an_edited_export_line_is_named(tmp_path: Path, sink_dir: Path) -> None:
    record(5)
    _checkpoint()
    folder = _auditor_folder(tmp_path)
    _export(folder / "events.jsonl")
    rows = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    rows[2]["actor_label"] = "someone else"  # seq 3
    (folder / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = _run_verify(
        folder, "export", "events.jsonl", "--checkpoints", str(sink_dir), "--public-key", "key.pem"
    )
    assert result.returncode == verifier.EXIT_CHAIN
    assert "first bad seq: 3" in result.stderr and "altered" in result.stderr


def _appended_by_hand() -> None:
    """Events 1, 2 and 4 as Oversight writes them; 3 appended by hand, its before and after
    laid out otherwise than their canonical text (spaces, key order, 1.50, escapes)."""
    record(2)
    kept = append_as_sent('{"b": 1.50, "a" : "\\u00e9"}', '[1E2,  {"y": 1, "x": -0}]')
    assert kept == ('{"b": 1.50, "a" : "\\u00e9"}', '[1E2,  {"y": 1, "x": -0}]')
    record(1)


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume:Warning")
def test_an_event_appended_by_hand_in_another_layout_verifies_here_and_offline(
    tmp_path: Path, sink_dir: Path, client: Client, admin_user: Any
) -> None:
    """Whoever holds the runtime credentials may call audit_append with before and after
    laid out otherwise: the database hashes the text it keeps, the export carries that
    text beside the values, and the database's check and an auditor's agree."""
    _appended_by_hand()
    assert audit_log_verify().finding is None  # the database's rehash vouches for it
    _checkpoint()
    folder = _auditor_folder(tmp_path)
    client.force_login(admin_user)
    response = client.get(reverse("audit:export", args=["jsonl"]))
    body = b"".join(response).decode("utf-8")
    rows = [json.loads(line) for line in body.splitlines()]
    by_seq = {row["seq"]: row for row in rows}
    assert by_seq[3]["before_text"] == '{"b": 1.50, "a" : "\\u00e9"}'
    assert by_seq[3]["before"] == {"a": "é", "b": 1.5}
    assert by_seq[3]["after_text"] == '[1E2,  {"y": 1, "x": -0}]'
    assert all("before_text" not in by_seq[seq] for seq in (1, 2, 4))  # canonical: no text
    args = ("export", "events.jsonl", "--checkpoints", str(sink_dir), "--public-key", "key.pem")

    def verified(lines: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
        (folder / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        return _run_verify(folder, *args)

    result = verified(rows)
    assert result.returncode == 0, result.stderr
    assert "Verified: 5 events against 1 checkpoints" in result.stdout  # 5: the export
    # The value shown is the value hashed: changing either is named.
    for edit in (
        {"before": {"a": "é", "b": 2}},  # the value, its text left as it was
        {"before_text": '{"b": 2, "a" : "\\u00e9"}', "before": {"a": "é", "b": 2}},
        {"before_text": None},  # the text left out: the canonical text is not what was hashed
    ):
        result = verified([{**r, **edit} if r["seq"] == 3 else r for r in rows])
        assert result.returncode == verifier.EXIT_CHAIN, edit
        assert "first bad seq: 3" in result.stderr and "altered" in result.stderr


@pytest.mark.postgres
def test_a_bundle_with_an_event_appended_by_hand_verifies(
    tmp_path: Path, sink_dir: Path, client: Client, admin_user: Any
) -> None:
    _appended_by_hand()
    path = _bundle(tmp_path)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path)
    result = _run_verify(tmp_path / path.stem, "bundle", ".")
    assert result.returncode == 0, result.stderr
    assert "Verified: 4 events, each in a signed checkpoint" in result.stdout
    client.force_login(admin_user)
    page = client.get(reverse("audit:event", args=[3])).content.decode()
    assert "Its content matches its hash." in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_the_export_view_carries_every_hashed_field() -> None:
    assert set(verifier.HASHED_FIELDS) | {"hash"} == set(COLUMNS)


def _bundle(tmp_path: Path, **filters: Any) -> Path:
    bundle = bundle_build(
        events=AuditEvent.objects.all(), filters=AuditFilters(**filters), site="https://x"
    )
    path = tmp_path / bundle.name
    path.write_bytes(bundle.content)
    return path


def test_an_evidence_bundle_verifies_without_the_project(tmp_path: Path, sink_dir: Path) -> None:
    record(7)
    _checkpoint()
    record(4)  # not yet in a checkpoint: the bundle writes one first
    path = _bundle(tmp_path)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        archive.extractall(folder)
    top = folder / path.stem
    assert {"README.md", "events.jsonl", "proofs.json", "public-key.pem", "verify.py"} <= {
        Path(n).name for n in names
    }
    result = _run_verify(top, "bundle", str(path))
    assert result.returncode == 0, result.stderr
    assert "Verified: 11 events, each in a signed checkpoint" in result.stdout
    result = _run_verify(top, "bundle", ".")
    assert result.returncode == 0, result.stderr


def test_a_bundle_with_an_edited_event_fails(tmp_path: Path, sink_dir: Path) -> None:
    record(6)
    path = _bundle(tmp_path)
    top = tmp_path / "x"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(top)
    top = top / path.stem
    lines = (top / "events.jsonl").read_text().splitlines()
    row = json.loads(lines[3])
    row["verb"] = "forged"
    row["hash"] = verifier.compute_hash(row)  # consistent, but not in the signed tree
    lines[3] = json.dumps(row)
    (top / "events.jsonl").write_text("\n".join(lines) + "\n")
    result = _run_verify(top, "bundle", ".")
    assert result.returncode == verifier.EXIT_CHECKPOINT
    assert "seq 4 is not in the tree" in result.stderr


def test_the_bundle_command_writes_a_file(tmp_path: Path, sink_dir: Path) -> None:
    record(3)
    call_command("audit_bundle", output=tmp_path)
    (written,) = tmp_path.glob("oversight-evidence-all-*.zip")
    assert zipfile.ZipFile(written).testzip() is None


def test_the_bundle_command_names_an_agent_that_does_not_exist(
    tmp_path: Path, sink_dir: Path
) -> None:
    """Said as such, before anything is written: not "No events match" after a checkpoint."""
    record(3)
    with pytest.raises(CommandError, match="No agent 'nope'"):
        call_command("audit_bundle", agent="nope", output=tmp_path)
    assert not AuditCheckpoint.objects.exists()
    assert not list(tmp_path.iterdir())
