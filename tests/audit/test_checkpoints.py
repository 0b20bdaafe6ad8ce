"""Checkpoints: written, chained, signed, delivered; and what verification finds with
them that the chain alone cannot (tail deletion, a rewrite with recomputed hashes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse

from oversight.accounts import roles
from oversight.audit import merkle, signing, sinks, verifier
from oversight.audit.checkpoints import CheckpointRefused, checkpoint_write
from oversight.audit.models import AuditCheckpoint, AuditEvent, CheckpointDelivery, SinkState
from tests.audit.helpers import record, tamper
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink_dir(tmp_path: Path, settings: Any) -> Path:
    settings.AUDIT_CHECKPOINT_SINKS = [f"dir:{tmp_path}"]
    return tmp_path


def _checkpoint_delivered() -> AuditCheckpoint:
    checkpoint = checkpoint_write()
    assert checkpoint is not None
    for delivery in checkpoint.deliveries.all():
        assert sinks.checkpoint_deliver(delivery_id=delivery.pk) is None
    return checkpoint


def _leaves() -> list[bytes]:
    hashes = AuditEvent.objects.order_by("seq").values_list("hash", flat=True)
    return [verifier.leaf_hash(h) for h in hashes]


def _verify(directory: Path) -> None:
    call_command("audit_verify", checkpoints=str(directory))


def _public_key() -> Any:
    return verifier.public_key_from_pem(signing.public_key_pem().encode())


def test_a_checkpoint_signs_the_head_and_the_merkle_root(sink_dir: Path) -> None:
    record(5)
    checkpoint = _checkpoint_delivered()
    assert checkpoint.number == 1 and checkpoint.tree_size == 5
    assert checkpoint.head == AuditEvent.objects.get(seq=5).hash
    assert checkpoint.root == verifier.merkle_root(_leaves()).hex()
    assert checkpoint.previous == verifier.GENESIS_HASH
    document = json.loads((sink_dir / "checkpoint-0000000001.json").read_text())
    assert document["events"] == {
        "from_seq": 1,
        "hashes": list(AuditEvent.objects.order_by("seq").values_list("hash", flat=True)),
    }
    assert verifier.signature_valid(_public_key(), document["checkpoint"], document["signature"])
    assert document["key_id"] == signing.key_id()
    delivery = checkpoint.deliveries.get()
    assert delivery.state == SinkState.DELIVERED and delivery.attempts == 1


def test_checkpoints_chain_and_skip_when_nothing_is_new(sink_dir: Path) -> None:
    record(3)
    first = _checkpoint_delivered()
    assert checkpoint_write() is None
    record(2)
    second = _checkpoint_delivered()
    assert second.number == 2 and second.tree_size == 5
    assert second.previous == first.statement_hash
    assert json.loads(second.document)["events"]["from_seq"] == 4
    _verify(sink_dir)


def test_the_stored_tree_gives_roots_and_proofs_past_one_chunk(sink_dir: Path) -> None:
    record(300)
    first = _checkpoint_delivered()
    record(330)
    second = _checkpoint_delivered()
    assert merkle.stored_chunks() == 2
    leaves = _leaves()
    assert second.root == verifier.merkle_root(leaves).hex()
    tree = merkle.Tree()
    root = bytes.fromhex(second.root)
    for index in (0, 1, 255, 256, 300, 511, 512, 629):
        path = tree.inclusion(index, second.tree_size)
        assert verifier.verify_inclusion(index, second.tree_size, leaves[index], path, root)
    path = tree.consistency(first.tree_size, second.tree_size)
    assert verifier.verify_consistency(
        first.tree_size, second.tree_size, bytes.fromhex(first.root), root, path
    )


@pytest.mark.django_db(transaction=True)  # tamper() acts as the owner: committed rows
def test_deleting_the_newest_events_contradicts_the_checkpoint(sink_dir: Path) -> None:
    record(8)
    _checkpoint_delivered()
    call_command("audit_verify", checkpoints=str(sink_dir))
    tamper("DELETE FROM audit_auditevent WHERE seq > 7")
    with pytest.raises(CommandError, match=r"at seq 8 \(checkpoint #1\).*deleted") as one:
        _verify(sink_dir)
    assert one.value.returncode == verifier.EXIT_CHECKPOINT
    tamper("DELETE FROM audit_auditevent WHERE seq > 3")
    with pytest.raises(CommandError, match=r"at seq 4 \(checkpoint #1\)"):
        _verify(sink_dir)


def _rewrite_from(seq: int) -> None:
    """What a superuser can do: change an event and recompute every hash after it."""
    rows = list(AuditEvent.objects.filter(seq__gte=seq).order_by("seq").values())
    prev = AuditEvent.objects.get(seq=seq - 1).hash
    for row in rows:
        if row["seq"] == seq:
            row["verb"] = "action.allowed.forged"
        row["prev_hash"] = prev
        row["hash"] = verifier.compute_hash(row)
        prev = row["hash"]
        tamper(
            "UPDATE audit_auditevent SET verb = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [row["verb"], row["prev_hash"], row["hash"], row["seq"]],
        )


@pytest.mark.django_db(transaction=True)  # tamper() acts as the owner: committed rows
def test_a_consistent_rewrite_is_named_at_its_first_event(sink_dir: Path) -> None:
    record(10)
    _checkpoint_delivered()
    record(10)
    _checkpoint_delivered()
    _rewrite_from(14)
    call_command("audit_verify")  # the chain alone cannot see it
    with pytest.raises(CommandError, match=r"at seq 14 \(checkpoint #2\).*rewritten") as found:
        _verify(sink_dir)
    assert found.value.returncode == verifier.EXIT_CHECKPOINT


@pytest.mark.django_db(transaction=True)  # tamper() acts as the owner: committed rows
def test_without_the_event_list_a_rewrite_is_placed_between_checkpoints(sink_dir: Path) -> None:
    record(10)
    _checkpoint_delivered()
    record(10)
    _checkpoint_delivered()
    for path in sink_dir.glob("*.json"):  # as an email sink's copy would be: statements only
        document = json.loads(path.read_text())
        del document["events"]
        path.write_text(json.dumps(document))
    _rewrite_from(14)
    with pytest.raises(CommandError, match=r"at seq 11 \(checkpoint #2\).*after seq 10"):
        _verify(sink_dir)


@pytest.mark.django_db(transaction=True)  # tamper() acts as the owner: committed rows
def test_a_single_edit_is_a_broken_chain(sink_dir: Path) -> None:
    record(6)
    _checkpoint_delivered()
    tamper("UPDATE audit_auditevent SET actor_label = 'x' WHERE seq = 4")
    with pytest.raises(CommandError, match=r"at seq 4") as found:
        _verify(sink_dir)
    assert found.value.returncode in (verifier.EXIT_CHAIN, verifier.EXIT_CHECKPOINT)


def test_a_forged_or_missing_checkpoint_is_refused(sink_dir: Path) -> None:
    for _ in range(3):
        record(2)
        _checkpoint_delivered()
    second = sink_dir / "checkpoint-0000000002.json"
    document = json.loads(second.read_text())
    document["checkpoint"]["tree_size"] = 3
    second.write_text(json.dumps(document))
    with pytest.raises(CommandError, match=r"checkpoint #2.*signature") as found:
        _verify(sink_dir)
    assert found.value.returncode == verifier.EXIT_BAD_CHECKPOINT
    second.unlink()
    with pytest.raises(CommandError, match=r"checkpoint #2 is missing"):
        _verify(sink_dir)


def test_another_key_is_refused(sink_dir: Path, tmp_path_factory: Any) -> None:
    record(2)
    _checkpoint_delivered()
    other = tmp_path_factory.mktemp("key") / "other.pem"
    with override_settings(AUDIT_SIGNING_KEY=signing.new_key_pem()):
        signing.signing_key.cache_clear()
        other.write_text(signing.public_key_pem())
    signing.signing_key.cache_clear()
    with pytest.raises(CommandError, match=r"signed by key") as found:
        call_command("audit_verify", checkpoints=str(sink_dir), public_key=other)
    assert found.value.returncode == verifier.EXIT_BAD_CHECKPOINT


@pytest.mark.django_db(transaction=True)  # tamper() acts as the owner: committed rows
def test_no_checkpoint_is_signed_over_a_log_that_contradicts_the_last(sink_dir: Path) -> None:
    record(6)
    _checkpoint_delivered()
    record(2)
    _rewrite_from(3)
    with pytest.raises(CheckpointRefused, match="head"):
        checkpoint_write()
    assert AuditCheckpoint.objects.count() == 1
    # The audit page says why, not that the job may have stopped.
    client = Client()
    client.force_login(make_user(get_user_model(), "audrey", roles.AUDITOR))
    page = client.get(reverse("audit:list")).content.decode()
    assert "because the log does not check out (" in page and "A checkpoint was refused at" in page
    assert "Is the checkpoint job (Celery beat) running?" not in page


def test_a_failed_sink_is_retried_and_recorded(tmp_path: Path, settings: Any) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory should be")
    settings.AUDIT_CHECKPOINT_SINKS = [f"dir:{blocked}"]
    record(1)
    checkpoint = checkpoint_write()
    assert checkpoint is not None
    delivery = checkpoint.deliveries.get()
    assert sinks.checkpoint_deliver(delivery_id=delivery.pk) == 15
    delivery.refresh_from_db()
    assert delivery.state == SinkState.PENDING and delivery.attempts == 1
    assert "FileExistsError" in delivery.last_error or "NotADirectory" in delivery.last_error
    blocked.unlink()
    CheckpointDelivery.objects.filter(pk=delivery.pk).update(claimed_until=None)
    assert sinks.checkpoint_deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.state == SinkState.DELIVERED and delivery.attempts == 2
    assert (blocked / "checkpoint-0000000001.json").exists()


def test_a_checkpoint_file_is_never_overwritten(sink_dir: Path) -> None:
    (sink_dir / "checkpoint-0000000001.json").write_text("{}\n")
    record(1)
    checkpoint = checkpoint_write()
    assert checkpoint is not None
    delivery = checkpoint.deliveries.get()
    assert sinks.checkpoint_deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.state == SinkState.FAILED and "never overwritten" in delivery.last_error
    assert (sink_dir / "checkpoint-0000000001.json").read_text() == "{}\n"


def webhook_delivery(settings: Any, url: str, events: int) -> Any:
    """The delivery of a checkpoint of ``events`` new events to the webhook sink ``url``."""
    settings.AUDIT_CHECKPOINT_WEBHOOK_SECRET = "s3cret"
    settings.AUDIT_CHECKPOINT_SINKS = [f"webhook:{url}"]
    record(events)
    checkpoint = checkpoint_write()
    assert checkpoint is not None
    return checkpoint.deliveries.get()


def test_a_webhook_sink_gets_the_signed_document_and_is_retried(settings: Any) -> None:
    from oversight.notifications.signing import signature_valid
    from tests.notifications.receiver import webhook_receiver

    with webhook_receiver(statuses=(503,)) as receiver:
        delivery = webhook_delivery(settings, receiver.url, 2)
        checkpoint = delivery.checkpoint
        assert sinks.checkpoint_deliver(delivery_id=delivery.pk) == 15  # 503: again later
        CheckpointDelivery.objects.filter(pk=delivery.pk).update(claimed_until=None)
        assert sinks.checkpoint_deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.state == SinkState.DELIVERED and delivery.attempts == 2
    sent = receiver.received[-1]
    assert sent.body.decode() == checkpoint.document
    assert signature_valid(sent.body, "s3cret", sent.headers["X-Oversight-Signature"])
    assert sent.headers["X-Oversight-Checkpoint"] == "1"


def test_a_webhook_sink_without_a_secret_fails_for_good(settings: Any) -> None:
    settings.AUDIT_CHECKPOINT_WEBHOOK_SECRET = ""
    settings.AUDIT_CHECKPOINT_SINKS = ["webhook:http://127.0.0.1:9/x"]
    record(1)
    checkpoint = checkpoint_write()
    assert checkpoint is not None
    delivery = checkpoint.deliveries.get()
    assert sinks.checkpoint_deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.state == SinkState.FAILED and "SECRET" in delivery.last_error


def test_an_email_sink_sends_the_statement_and_attaches_the_document(
    settings: Any, mailoutbox: list[Any]
) -> None:
    settings.AUDIT_CHECKPOINT_SINKS = ["email:auditor@example.com"]
    record(3)
    checkpoint = checkpoint_write()
    assert checkpoint is not None
    assert sinks.checkpoint_deliver(delivery_id=checkpoint.deliveries.get().pk) is None
    (message,) = mailoutbox
    assert message.to == ["auditor@example.com"]
    assert checkpoint.root in message.body
    name, content, mimetype = message.attachments[0]
    assert mimetype == "application/json"
    assert name == "checkpoint-0000000001.json" and content.strip() == checkpoint.document


def test_the_proof_command_prints_checked_proofs(
    sink_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(300)
    _checkpoint_delivered()
    record(20)
    second = _checkpoint_delivered()
    call_command("audit_proof", seq=257)
    proof = json.loads(capsys.readouterr().out)
    assert proof["checkpoint"] == 2 and proof["tree_size"] == 320 and proof["root"] == second.root
    assert verifier.verify_inclusion(
        256,
        320,
        verifier.leaf_hash(proof["hash"]),
        [bytes.fromhex(p) for p in proof["path"]],
        bytes.fromhex(second.root),
    )
    call_command("audit_proof", first=1, second=2)
    assert json.loads(capsys.readouterr().out)["path"]
    with pytest.raises(CommandError, match="after checkpoint #1"):
        call_command("audit_proof", seq=310, checkpoint=1)


def test_a_backlog_is_covered_by_several_bounded_checkpoints(
    sink_dir: Path, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.AUDIT_CHECKPOINT_MAX_EVENTS = 4
    record(10)
    call_command("audit_checkpoint")
    assert "Checkpoint #3: 10 events" in capsys.readouterr().out
    sizes = list(AuditCheckpoint.objects.order_by("number").values_list("tree_size", flat=True))
    assert sizes == [4, 8, 10]
    for delivery in CheckpointDelivery.objects.all():
        sinks.checkpoint_deliver(delivery_id=delivery.pk)
    _verify(sink_dir)
    call_command("audit_checkpoint")
    assert "nothing written" in capsys.readouterr().out


def test_the_beat_job_catches_up_a_backlog(sink_dir: Path, settings: Any) -> None:
    from oversight.audit.checkpoints import checkpoint_if_due

    settings.AUDIT_CHECKPOINT_MAX_EVENTS = 3
    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 3
    record(10)
    last = checkpoint_if_due()
    assert last is not None and last.number == 3 and last.tree_size == 9
    assert checkpoint_if_due() is None  # one new event, and the last checkpoint is fresh
