"""A compensator worker in a process of its own, for tests/sdk/test_rewind_worker_killed.py:
the SDK's `run_compensators` over a toy payments store in SQLite (refunds per charge, and
a log of every charge back made), which outlives the process.

    python tests/sdk/rewind_worker.py URL TOKEN STORE [--hang-after N]

With --hang-after N, the Nth charge back is made and committed, then the worker hangs
before reporting it: the worst moment to be killed (changed, not yet said so).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from oversight_sdk import CompensationTask, Oversight

REFUND = "payments.refund"


def connect(store: Path) -> sqlite3.Connection:
    """The store, made on first use: refunded amount per charge, and every charge back."""
    db = sqlite3.connect(store, timeout=30, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS ledger (charge TEXT PRIMARY KEY, refunded INT)")
    db.execute("CREATE TABLE IF NOT EXISTS charge_backs (charge TEXT, task TEXT, pid INT)")
    return db


def state(db: sqlite3.Connection, charge: str) -> dict[str, int]:
    row = db.execute("SELECT refunded FROM ledger WHERE charge = ?", [charge]).fetchone()
    return {"refunded": row[0] if row else 0}


def move(db: sqlite3.Connection, charge: str, amount: int, task: str = "") -> dict[str, int]:
    """Refund (amount > 0) or charge back (< 0, logged), in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "INSERT INTO ledger VALUES (?, ?) ON CONFLICT(charge) DO UPDATE"
        " SET refunded = refunded + excluded.refunded",
        [charge, amount],
    )
    if amount < 0:
        db.execute("INSERT INTO charge_backs VALUES (?, ?, ?)", [charge, task, os.getpid()])
    db.execute("COMMIT")
    return state(db, charge)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("store", type=Path)
    parser.add_argument("--hang-after", type=int, default=0)
    args = parser.parse_args()
    db = connect(args.store)
    made = 0
    with Oversight(args.url, args.token, timeout=10, retries=1, backoff=0.05) as client:

        def read(task: CompensationTask) -> Any:
            return state(db, task.params["charge"])

        @client.compensator(REFUND, read=read)
        def charge_back(task: CompensationTask) -> Any:
            nonlocal made
            left = move(db, task.params["charge"], -task.params["amount"], task.id)
            made += 1
            while made == args.hang_after:
                time.sleep(1)  # changed, not reported: waits here to be killed
            return left

        client.run_compensators(wait=1)


if __name__ == "__main__":
    main()
