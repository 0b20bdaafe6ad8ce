#!/usr/bin/env python
"""Root-cause accuracy: seeded fault-injection scenarios, end to end, and how often the
incident analysis ranks the injected cause first and in the top three.

Usage (zero-install: SQLite files, no other services):

    .venv/bin/python bench/rca.py                 # 6 scenarios x 4 seeds = 24 runs
    .venv/bin/python bench/rca.py --seeds 1 --scenarios widened-grant

Each run, several at once (--parallel):

1. A copy of a seeded demo database (migrated, `seed_demo`, and a personal token of the
   demo admin, made once per bench run).
2. Oversight served as the zero-install default (`uvicorn`, SQLite, periodic jobs in the
   server), with the analysis in --bucket second buckets (INCIDENT_BUCKET_SECONDS) so
   that a scenario takes minutes, not hours.
3. `manage.py simulate --agents AGENT --scenario NAME --scenario-after BASELINE --decoys D
   --seed S`: the agent's demo traffic through the SDK at --rate actions/s; after
   BASELINE seconds the scenario's fault, and D (the seed mod 3) unrelated changes made
   around it. The simulator prints the fault's audit events (`CAUSE {...}`).
4. --after seconds later, an incident is opened for the agent through the API
   (`POST /api/v1/incidents`) and read back until its analysis is done.
5. The rank of the first cause holding one of the fault's audit events; the time from
   opening to the report; and the blast radius against a recount of the actions in the
   run's database over the same span.

Writes bench/results/rca-<date>-<HHMM>.json and prints the summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SCENARIOS = {
    "bad-release": "refund-bot",
    "loosened-limit": "refund-bot",
    "changed-tool": "refund-bot",
    "widened-grant": "email-campaigner",
    "noisy-unrelated": "email-campaigner",
    "owner-drift": "crm-updater",
}
TOP1_TARGET, TOP3_TARGET, REPORT_TARGET_S = 0.70, 0.90, 60.0


def _env(database: Path, bucket: int, lookback: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "INCIDENT_BUCKET_SECONDS": str(bucket),
            "INCIDENT_LOOKBACK_BUCKETS": str(lookback),
            "DEBUG": "1",
            "SECRET_KEY": "bench-rca-" + "x" * 40,
        }
    )
    return env


def _manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run(  # noqa: S603 - our own manage.py
        [PYTHON, "manage.py", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


SHELL_CODE = """
from django.contrib.auth import get_user_model
from oversight.accounts.services import personal_token_create
print(personal_token_create(user=get_user_model().objects.get(username="admin"), name="rca")[1])
"""


def template(work: Path, bucket: int, lookback: int) -> tuple[Path, str]:
    """A migrated, seeded database and the demo admin's raw personal token."""
    path = work / "template.sqlite3"
    env = _env(path, bucket, lookback)
    _manage(env, "migrate", "--noinput", "-v0")
    _manage(env, "seed_demo")
    token = _manage(env, "shell", "-c", SHELL_CODE).strip().splitlines()[-1]
    return path, token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not become healthy")


def _api(base: str, token: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310
        return json.load(answer)


def _recount(database: Path, agent: str, since: str, until: str) -> int:
    """Actions of the agent in [since, until), compensations aside, read from the file."""

    def stored(moment: str) -> str:  # as Django's SQLite backend stores datetimes
        return dt.datetime.fromisoformat(moment).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    with sqlite3.connect(database) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM gateway_action a JOIN agents_agent g ON g.id = a.agent_id"
            " WHERE g.slug = ? AND a.created_at >= ? AND a.created_at < ?"
            " AND a.compensates_id IS NULL",
            (agent, stored(since), stored(until)),
        ).fetchone()
    return int(count)


def one_run(args: argparse.Namespace, work: Path, base_db: Path, token: str, run: dict) -> dict:
    database = work / f"run-{run['index']}.sqlite3"
    shutil.copy(base_db, database)
    env = _env(database, args.bucket, args.lookback)
    port = _free_port()
    command = [PYTHON, "-m", "uvicorn", "oversight.asgi:application", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
    log = (work / f"server-{run['index']}.log").open("w")
    server = subprocess.Popen(  # noqa: S603 - our own server
        command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, server)
        decoys = run["seed"] % 3
        duration = args.baseline + args.after + (2 * args.bucket if decoys else 0)
        output = _manage(
            env,
            "simulate",
            "--url",
            base,
            "--rate",
            str(args.rate),
            "--agents",
            run["agent"],
            "--hold-wait",
            "0.5",
            "--duration",
            str(duration),
            "--seed",
            str(run["seed"]),
            "--scenario",
            run["scenario"],
            "--scenario-after",
            str(args.baseline),
            "--decoys",
            str(decoys),
            timeout=duration + 120,
        )
        causes = [json.loads(line[6:]) for line in output.splitlines() if line.startswith("CAUSE ")]
        if not causes:
            raise RuntimeError(f"no CAUSE line:\n{output[-2000:]}")
        truth = set(causes[0]["seqs"])
        opened = time.monotonic()
        incident = _api(base, token, "/incidents", {"agent": run["agent"], "title": "rca bench"})
        while incident["analysis"]["state"] == "queued" and time.monotonic() - opened < 120:
            time.sleep(0.2)
            incident = _api(base, token, f"/incidents/{incident['id']}")
        reported = time.monotonic() - opened
        report = incident["report"] or {}
        ranked = report.get("causes", [])
        rank = next(
            (
                i
                for i, cause in enumerate(ranked, 1)
                if truth & {event["seq"] for event in cause["events"]}
            ),
            None,
        )
        blast = report.get("blast_radius") or {}
        recount = (
            _recount(database, run["agent"], blast["since"], blast["until"]) if blast else None
        )
        return {
            **run,
            "decoys": decoys,
            "rank": rank,
            "candidates": len(ranked),
            "top": ranked[0]["summary"] if ranked else None,
            "break_clear": bool(report.get("break") and report["break"]["clear"]),
            "report_seconds": round(reported, 3),
            "analysis_seconds": report.get("seconds"),
            "blast_actions": blast.get("actions"),
            "recounted_actions": recount,
            "simulated": [line for line in output.splitlines() if "done:" in line][-1:],
            "cause": causes[0],
            "break": report.get("break"),
            "ranked": [
                {k: c[k] for k in ("at", "summary", "score", "effect", "scope_fit", "time_fit")}
                | {"seqs": [e["seq"] for e in c["events"]]}
                for c in ranked
            ],
        }
    except Exception as exc:  # a failed run is reported, not hidden
        return {**run, "rank": None, "error": str(exc)[-1500:]}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        database.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--bucket", type=int, default=1, help="Seconds per analysis bucket.")
    parser.add_argument("--baseline", type=float, default=60, help="Seconds before the fault.")
    parser.add_argument("--after", type=float, default=30, help="Seconds after it, then open.")
    parser.add_argument("--rate", type=float, default=10, help="The agent's actions per second.")
    parser.add_argument("--parallel", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="Keep the work directory (logs).")
    args = parser.parse_args()
    # The window: the run's traffic, not the demo's setup just before it.
    args.lookback = int((args.baseline + args.after) / args.bucket) - 5
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    runs = [
        {"index": i, "scenario": name, "agent": SCENARIOS[name], "seed": seed}
        for i, (seed, name) in enumerate(
            (s, n) for s in range(args.first_seed, args.first_seed + args.seeds) for n in names
        )
    ]
    work = Path(tempfile.mkdtemp(prefix="oversight-rca-"))
    started = time.time()
    try:
        base_db, token = template(work, args.bucket, args.lookback)
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            results = list(pool.map(lambda run: one_run(args, work, base_db, token, run), runs))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ranks = [r["rank"] for r in results]
    top1 = sum(1 for r in ranks if r == 1) / len(ranks)
    top3 = sum(1 for r in ranks if r is not None and r <= 3) / len(ranks)
    times = [r["report_seconds"] for r in results if "report_seconds" in r]
    summary = {
        "bench": "rca",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "python": sys.version.split()[0],
        "args": {k: v for k, v in vars(args).items()},
        "runs": len(results),
        "errors": sum(1 for r in results if "error" in r),
        "top1": round(top1, 4),
        "top3": round(top3, 4),
        "report_seconds_max": max(times) if times else None,
        "report_seconds_median": statistics.median(times) if times else None,
        "blast_radius_matches": sum(
            1 for r in results if r.get("blast_actions") == r.get("recounted_actions") is not None
        ),
        "wall_seconds": round(time.time() - started, 1),
        "results": results,
    }
    out = ROOT / "bench" / "results" / f"rca-{dt.datetime.now():%Y%m%d-%H%M}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    for r in results:
        print(
            f"{r['scenario']:<16} seed {r['seed']} decoys {r.get('decoys', '-')}: rank {r['rank']}"
            f" of {r.get('candidates', '-')}, report {r.get('report_seconds', '-')} s,"
            f" blast {r.get('blast_actions')}/{r.get('recounted_actions')}"
            + (f"  ERROR {r['error'][:200]}" if "error" in r else f"  top: {r.get('top')}")
        )
    print(
        f"top-1 {top1:.0%} (target {TOP1_TARGET:.0%}), top-3 {top3:.0%} (target"
        f" {TOP3_TARGET:.0%}), report within {summary['report_seconds_max']} s"
        f" (target {REPORT_TARGET_S:g} s); {summary['errors']} errors; {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
