#!/usr/bin/env python
"""Audit trust at scale: what a checkpoint costs as the log grows, and how fast the whole
log verifies, each beside a same-run baseline.

Usage (as root or a user who can run PostgreSQL's initdb; loopback only):

    .venv/bin/python bench/audit_trust.py                       # 100k, 1M and 10M events
    .venv/bin/python bench/audit_trust.py --sizes 100000,1000000 --verify-events 1000000

What it does:

1. Starts its own PostgreSQL cluster (bench/decide.py's, durable defaults) and migrates.
2. Grows the log to each size in turn with real events (each hashed and chained as the
   writer does; written with COPY), and at each size writes the checkpoint that covers
   the growth (``checkpoint_write``: it checks every new event's content and link, then
   extends the stored Merkle tree). Then, five times, appends ``--new-events`` more events
   and times the next checkpoint: its milliseconds, per new event, and its SQL
   statements. O(log n) or less per new event means these stay flat as n grows tenfold.
3. At ``--verify-events`` it times ``audit_log_verify`` (the chain, every event against
   the checkpoints, every action against its decision event) beside the same rows read by
   the same reader without verifying, and a bare ``count(*)``.
4. Prints a table and writes bench/results/audit-trust-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from decide import Postgres, python_speed, report_head, say  # noqa: E402

RESULTS = ROOT / "bench" / "results"
START = datetime(2026, 1, 1, tzinfo=UTC)


def grow(to: int) -> float:
    """Append real events up to seq ``to``; seconds taken."""
    from django.db import connection

    from oversight.audit import verifier

    columns = (*verifier.HASHED_FIELDS, "hash")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1")
        last = cursor.fetchone()
    seq, prev = (last[0], last[1]) if last else (0, verifier.GENESIS_HASH)
    if seq >= to:
        return 0.0
    raw = connection.connection if connection.connection else None
    if raw is None:
        connection.ensure_connection()
        raw = connection.connection
    copy_sql = f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN"
    rng = random.Random(seq)  # noqa: S311 (synthetic data, not secrets)
    with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
        while seq < to:
            seq += 1
            agent = rng.randrange(1, 200)
            row = {
                "seq": seq,
                "created_at": START + timedelta(milliseconds=seq),
                "actor_type": "agent",
                "actor_user_id": None,
                "actor_agent_id": agent,
                "actor_label": f"agent:bot-{agent}",
                "verb": "action.decided",
                "target_type": "bench.action",
                "target_id": f"{rng.getrandbits(128):032x}",
                "target_label": "payments.refund on order/1234",
                "agent_id": agent,
                "request_id": f"{rng.getrandbits(64):016x}",
                "before": None,
                "after": {
                    "status": "allowed",
                    "params": {"amount": rng.randrange(1, 500), "currency": "EUR"},
                    "reasons": ["grant payments.refund"],
                },
                "prev_hash": prev,
            }
            row["hash"] = verifier.compute_hash(row)
            prev = row["hash"]
            values = [row[c] for c in columns]
            values[columns.index("after")] = verifier.canonical_text(row["after"])
            copy.write_row(values)
    raw.commit()
    return time.perf_counter() - started


def timed_checkpoint() -> dict[str, Any]:
    """Checkpoints until every event is covered (one, unless the growth passed
    AUDIT_CHECKPOINT_MAX_EVENTS), as ``manage.py audit_checkpoint`` does."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from oversight.audit.checkpoints import checkpoint_write

    written = []
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        while (checkpoint := checkpoint_write()) is not None:
            written.append(checkpoint.number)
        seconds = time.perf_counter() - started
    assert written
    return {"numbers": written, "seconds": seconds, "statements": len(queries)}


def at_size(size: int, new_events: int, rounds: int) -> dict[str, Any]:
    from oversight.audit.models import MerkleNode

    say(f"growing the log to {size:,} events")
    grown = grow(size)
    catch_up = timed_checkpoint()
    say(
        f"  grown in {grown:.0f} s; the {len(catch_up['numbers'])} checkpoints covering the "
        f"growth took {catch_up['seconds']:.1f} s"
    )
    samples = []
    for _ in range(rounds):
        from oversight.audit.models import AuditEvent

        head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
        grow(head + new_events)
        samples.append(timed_checkpoint())
    ms = [s["seconds"] * 1000 for s in samples]
    result = {
        "size": size,
        "grow_seconds": round(grown, 1),
        "catch_up": {
            "checkpoints": len(catch_up["numbers"]),
            "seconds": round(catch_up["seconds"], 2),
        },
        "new_events": new_events,
        "checkpoint_ms": [round(m, 1) for m in ms],
        "checkpoint_ms_median": round(statistics.median(ms), 1),
        "us_per_new_event": round(statistics.median(ms) * 1000 / new_events, 2),
        "statements": [s["statements"] for s in samples],
        "stored_nodes": MerkleNode.objects.count(),
    }
    say(
        f"  next checkpoints after {new_events:,} new events: {result['checkpoint_ms']} ms "
        f"({result['us_per_new_event']} µs per new event, statements {result['statements']})"
    )
    return result


def verify_speed(directory: Path) -> dict[str, Any]:
    from django.db import connection

    from oversight.audit import signing, verifier
    from oversight.audit.verification import _rows_in_order, audit_log_verify

    checkpoints = verifier.read_checkpoints(str(directory))
    public_key = verifier.public_key_from_pem(signing.public_key_pem().encode())
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("SELECT count(*) FROM audit_auditevent")
        total = cursor.fetchone()[0]
        count_s = time.perf_counter() - started
    started = time.perf_counter()
    read = sum(1 for _ in _rows_in_order(5000))
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    outcome = audit_log_verify(checkpoints=checkpoints, public_key=public_key)
    verify_s = time.perf_counter() - started
    assert outcome.finding is None, outcome.finding
    result = {
        "events": total,
        "checkpoints": len(checkpoints),
        "count_star_s": round(count_s, 2),
        "read_only_events_per_s": round(read / read_s),
        "verify_events_per_s": round(outcome.checked / verify_s),
        "verify_seconds": round(verify_s, 1),
        "ratio_to_read": round(read_s / verify_s, 3),
    }
    say(
        f"verification of {total:,} events against {len(checkpoints)} checkpoints: "
        f"{result['verify_events_per_s']:,}/s; reading the same rows without verifying: "
        f"{result['read_only_events_per_s']:,}/s (ratio {result['ratio_to_read']})"
    )
    return result


def deliver_all() -> None:
    from oversight.audit import sinks
    from oversight.audit.models import CheckpointDelivery

    for delivery_id in CheckpointDelivery.objects.values_list("pk", flat=True):
        sinks.checkpoint_deliver(delivery_id=delivery_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--new-events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--verify-events", type=int, default=1_000_000)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    work = Path(tempfile.mkdtemp(prefix="oversight-trust-"))
    pg = Postgres(work)
    began = time.monotonic()
    try:
        pg.start()
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        key = Ed25519PrivateKey.generate()
        os.environ.update(
            DATABASE_URL=pg.url,
            DJANGO_SETTINGS_MODULE="oversight.settings",
            SECRET_KEY="bench-only-" + "x" * 50,
            AUDIT_SIGNING_KEY=key.private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
            ).decode(),
            AUDIT_CHECKPOINT_SINKS=f"dir:{work / 'checkpoints'}",
            DB_STATEMENT_TIMEOUT="0",
        )
        os.environ.pop("REDIS_URL", None)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        report: dict[str, Any] = {
            **report_head("bench/audit_trust.py"),
            "postgres": pg.settings(),
            "python_speed_us": {"start": python_speed()},
            "sizes": [],
        }
        for size in sizes:
            report["sizes"].append(at_size(size, args.new_events, args.rounds))
            if size == args.verify_events or (size > args.verify_events and "verify" not in report):
                deliver_all()
                report["verify"] = verify_speed(work / "checkpoints")
        report["python_speed_us"]["end"] = python_speed()
        report["seconds_total"] = round(time.monotonic() - began, 1)
        print("\n== Checkpoint cost as the log grows (after each round of new events)\n")
        print(f"{'events':>12}{'median ms':>11}{'µs/new event':>14}{'statements':>12}{'nodes':>9}")
        for row in report["sizes"]:
            print(
                f"{row['size']:>12,}{row['checkpoint_ms_median']:>11}"
                f"{row['us_per_new_event']:>14}{statistics.median(row['statements']):>12}"
                f"{row['stored_nodes']:>9,}"
            )
        if "verify" in report:
            v = report["verify"]
            print(
                f"\nVerify {v['events']:,} events: {v['verify_events_per_s']:,}/s; the same "
                f"rows read without verifying: {v['read_only_events_per_s']:,}/s."
            )
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            path = RESULTS / f"audit-trust-{report['date']}.json"
            path.write_text(json.dumps(report, indent=1) + "\n")
            say(f"wrote {path.relative_to(ROOT)}")
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
