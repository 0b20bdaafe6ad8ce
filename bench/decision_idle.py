"""What idling between decisions costs one decision, in one process, no HTTP.

The fast lane's own work for one allowed decision (``fastlane._work_by`` over
``fastlane._decide``: the token, the pipeline, its one statement), timed back to back
and after a pause before each, alternated in rounds. At 50 calls/s (the MCP proxy's
bench) every process on the way sleeps about 20 ms between two calls; this shows what
that alone does to the same work on the same machine. Also times the statement
(``prepared.fetch_one``) inside each decision, so the Python and PostgreSQL shares show.

    DATABASE_URL=postgres://.../db .venv/bin/python bench/decision_idle.py [--pause 0.02]

Fills the database with the refund bot of bench/decide.py (as bench/mcp_proxy.py does).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pause", type=float, default=0.02, help="seconds idle before each")
    parser.add_argument("--decisions", type=int, default=500, help="per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        sys.exit("Set DATABASE_URL to a PostgreSQL database to fill.")
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import mcp_proxy

    os.environ.update({k: v for k, v in mcp_proxy.server_env().items() if k != "PATH"})
    import django

    django.setup()
    from oversight.gateway import fastlane, pipeline, recording
    from oversight.lib.deadline import Deadline

    token = mcp_proxy.setup_data()["token"]
    statements: list[float] = []
    fetch_one = recording.prepared.fetch_one

    def timed_fetch_one(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return fetch_one(*a, **k)
        finally:
            statements.append(time.perf_counter() - started)

    recording.prepared.fetch_one = timed_fetch_one  # type: ignore[assignment]

    def decide(i: int) -> None:
        data = pipeline.ActionInput(
            action=mcp_proxy.REFUND, resource=f"stripe:charge/ch_{i}", params={"amount": 5}
        )
        answer, _ = fastlane._work_by(
            Deadline(5), "bench", fastlane._decide, token, data, uuid.uuid4().hex
        )
        if answer[0] != 201:
            sys.exit(f"not allowed: {answer}")

    for i in range(300):  # warm: caches, prepared statements, the connection
        decide(i)
    phases: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.rounds):
        idle = f"after {args.pause * 1000:g} ms idle"
        for name, pause in (("back to back", 0.0), (idle, args.pause)):
            statements.clear()
            walls = []
            for i in range(args.decisions):
                if pause:
                    time.sleep(pause)
                started = time.perf_counter()
                decide(i)
                walls.append(time.perf_counter() - started)
            phase = phases.setdefault(name, {"decision": [], "statement": []})
            phase["decision"] += walls
            phase["statement"] += statements[-len(walls) :]
    report: dict[str, Any] = {
        "benchmark": "decision_idle",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "pause_s": args.pause,
        "decisions_per_phase": args.decisions * args.rounds,
        "phases": {},
    }
    for name, phase in phases.items():
        rest = [d - s for d, s in zip(phase["decision"], phase["statement"], strict=True)]
        report["phases"][name] = {
            "decision_p50_us": round(statistics.median(phase["decision"]) * 1e6),
            "statement_p50_us": round(statistics.median(phase["statement"]) * 1e6),
            "python_p50_us": round(statistics.median(rest) * 1e6),
        }
    first, second = report["phases"].values()
    report["ratio_idle_to_back_to_back"] = {
        key: round(second[key] / first[key], 2) for key in first
    }
    text = json.dumps(report, indent=2)
    print(text)
    out = (
        args.out
        or ROOT / "bench" / "results" / f"decision-idle-{time.strftime('%Y-%m-%d-%H%M')}.json"
    )
    out.write_text(text + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
