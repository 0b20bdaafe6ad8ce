#!/usr/bin/env python
"""Rewind: the plan of 10,000 actions, and 1,000 compensations executed through the SDK's
worker, beside the decision pipeline's rate in the same run.

Usage (a PostgreSQL server it may drop, create and migrate the database on, and a Redis
database it may use as the Celery broker; loopback only):

    DATABASE_URL=postgres://oversight_runtime@127.0.0.1:55500/oversight_rwbench \\
    DATABASE_OWNER_URL=postgres://oversight_owner@127.0.0.1:55500/oversight_rwbench \\
    REDIS_URL=redis://127.0.0.1:55501/9 \\
        .venv/bin/python bench/rewind.py

What it does:

1. Drops and creates the database (as its owner), migrates it, and through the services
   makes a team, an owner and two agents, each with a reversible grant for
   payments.refund on stripe:charge/* (undone by payments.charge) and a production token.
2. **The plan**: records --plan-actions succeeded, reversible refunds of the first agent
   with bulk_create (the undo contract copied from one decided through the pipeline),
   spread over 2,000 charges; times `rewind_plan` and `rewind_create` of the whole
   window --runs times (median, p50/p99), and the peak of Python allocations of one
   more run of each (tracemalloc, untimed).
3. Runs Oversight as in production (docs/deploy.md): `uvicorn oversight.asgi:application
   --workers 2`, DEBUG off, no periodic jobs in the server, and a Celery worker (the
   runner, with the broker at REDIS_URL). No beat: the rewind must move on by its own
   kicks (its creation, and each reported undo), not by the beat's safety net.
4. **Compensations**, for each worker count of --workers (threads, one SDK client each):
   - --refunds refunds, one per charge, through the SDK's `guard` over a toy ledger
     (decided by the pipeline, run, reported: real succeeded actions with their audit);
     their rate is the pipeline's same-run baseline (decide + report), and --refunds
     more `ask`s alone (decide only), with the same client settings;
   - a bulk rewind of them (`rewind_create`), run by the Celery worker's steps;
   - the workers' `run_compensators` over the ledger until the rewind is done.
   The rate is compensations reported over the time from `rewind_create` to the last
   report (the server's `finished_at`); the ledger must be back to zero on every charge.
   CPU per compensation is given for the server, the Celery worker (the runner) and this
   process (the SDK workers and the ledger).
5. Prints a summary and writes bench/results/rewind-<date>-<HHMM>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLAN_TARGET_S = 2.0
RATE_TARGET = 100.0  # compensations per second
REFUND = "payments.refund"


def _env() -> dict[str, str]:
    """Production settings (DEBUG off), Redis as the broker, quiet logs."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "oversight.settings",
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-rewind-" + "x" * 40),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "PERIODIC_IN_SERVER": "0",
    }


def fresh_database() -> None:
    import psycopg

    url = os.environ.get("DATABASE_OWNER_URL") or os.environ["DATABASE_URL"]
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    command = [sys.executable, "manage.py", "migrate", "--noinput"]
    if os.environ.get("DATABASE_OWNER_URL"):
        command += ["--database", "owner"]
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True)  # noqa: S603
    if done.returncode:
        sys.exit(f"migrate failed:\n{done.stderr}")


def _setup_django() -> None:
    os.environ.update({k: v for k, v in _env().items() if k != "DATABASE_OWNER_URL"})
    os.environ.pop("DATABASE_OWNER_URL", None)
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import django

    django.setup()


def make_agents() -> list[tuple[Any, Any, str]]:
    """Two agents of one team, each with the reversible refund grant and a token."""
    from decide import refund_agent_create

    from oversight.agents.services import agent_create, token_create
    from oversight.audit.actors import Actor
    from oversight.policy.models import Grant
    from oversight.policy.services import policy_object_create

    actor = Actor.system("bench")
    first = refund_agent_create(actor)
    second = agent_create(
        actor=actor,
        name="Refund bot two",
        purpose="Refunds, for the rewind benchmark.",
        owner=first.owner,
        team=first.team,
        environments=["staging", "production"],
    )
    made = []
    for agent in (first, second):
        grant = Grant(
            agent=agent,
            action=REFUND,
            resource="stripe:charge/*",
            reversibility="reversible",
            undo_action="payments.charge",
            undo_params={"charge": "params.charge", "amount": "params.amount"},
            undo_window_seconds=86400,
        )
        policy_object_create(actor=actor, obj=grant)
        policy_object_create(actor=actor, obj=Grant(agent=agent, action="payments.charge"))
        made.append((agent, *token_create(actor=actor, agent=agent, environment="production")))
    return made


def _pct(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cut = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []
    p50, p99 = (cut[49], cut[98]) if cut else (ordered[0], ordered[0])
    return {"median": round(statistics.median(ordered), 4), "p50": round(p50, 4)} | {
        "p99": round(p99, 4),
        "runs": [round(v, 4) for v in values],
    }


def _timed(call: Callable[[], Any], runs: int) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return _pct(times) | {"peak_alloc_mib": round(peak / 2**20, 1)}


def bench_plan(agent: Any, token: Any, count: int, runs: int) -> dict[str, Any]:
    from oversight.audit.actors import Actor
    from oversight.gateway.auth import token_refresh
    from oversight.gateway.lifecycle import ResultInput, action_report_result
    from oversight.gateway.models import Action
    from oversight.gateway.pipeline import ActionInput, Credentials, decide
    from oversight.rewind import bulk
    from oversight.rewind.models import Rewind
    from oversight.rewind.plan import Scope, rewind_plan

    since = dt.datetime.now(dt.UTC)
    fresh = token_refresh(token.token_hash)
    data = ActionInput(REFUND, "stripe:charge/ch_model", {"charge": "ch_model", "amount": 1})
    model, _ = decide(credentials=Credentials.of(fresh), data=data)
    model = action_report_result(
        token=fresh,
        action_id=model.pk,
        data=ResultInput(outcome="succeeded", after={"refunded": 1}),
    )
    assert model.reversibility == "reversible" and model.undo_contract, model.reversibility
    skip = {"id", "created_at", "resource", "params", "request_hash"}
    fields = {f.attname: getattr(model, f.attname) for f in Action._meta.concrete_fields}
    common = {k: v for k, v in fields.items() if k not in skip}
    began = time.perf_counter()
    rows = []
    for n in range(count - 1):
        charge = f"ch_{n % 2000}"
        params = {"charge": charge, "amount": 1 + n % 50}
        rows.append(
            Action(
                **common,
                resource=f"stripe:charge/{charge}",
                params=params,
                request_hash=f"{n:064x}",
            )
        )
    Action.objects.bulk_create(rows, batch_size=2000)
    seeded = time.perf_counter() - began
    scope = Scope(agent=agent, since=since, until=dt.datetime.now(dt.UTC))
    plan = rewind_plan(scope=scope)
    actor = Actor.system("bench")
    result = {
        "actions": plan["actions"],
        "to_undo": plan["to_undo"],
        "seed_s": round(seeded, 2),
        "rewind_plan_s": _timed(lambda: rewind_plan(scope=scope), runs),
        "rewind_create_s": _timed(lambda: bulk.rewind_create(actor=actor, scope=scope), runs),
    }
    Rewind.objects.filter(agent=agent).update(state="cancelled")
    return result


class Ledger:
    """The toy target system: what has been refunded on each charge (shared by threads)."""

    def __init__(self) -> None:
        self.refunded: dict[str, int] = {}
        self.lock = threading.Lock()

    def state(self, charge: str) -> dict[str, int]:
        with self.lock:
            return {"refunded": self.refunded.get(charge, 0)}

    def move(self, charge: str, amount: int) -> dict[str, int]:
        with self.lock:
            self.refunded[charge] = self.refunded.get(charge, 0) + amount
            return {"refunded": self.refunded[charge]}


def _runtime_env() -> dict[str, str]:
    return {k: v for k, v in _env().items() if k != "DATABASE_OWNER_URL"}


def runner() -> subprocess.Popen[bytes]:
    """The Celery worker, as docs/deploy.md runs it; flushes the broker's queue first
    (the plan's rewinds asked for steps of rewinds since cancelled)."""
    from oversight.celery import app

    app.control.purge()
    command = [sys.executable, "-m", "celery", "-A", "oversight", "worker"]
    command += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
    process = subprocess.Popen(command, cwd=ROOT, env=_runtime_env())  # noqa: S603
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            process.terminate()
            raise RuntimeError("the Celery worker did not start")
    return process


def serve() -> tuple[subprocess.Popen[bytes], str]:
    from mcp_proxy import free_port

    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "oversight.asgi:application", "--workers", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT, env=_runtime_env())  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):  # noqa: S310
                return process, base
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("Oversight did not start")


def _client(base: str, raw: str) -> Any:
    from oversight_sdk import Oversight

    return Oversight(base, raw, timeout=10, retries=1, backoff=0.05)


def baseline(client: Any, ledger: Ledger, tag: str, count: int) -> dict[str, Any]:
    """The pipeline through the same client: refunds (decide, run, report), then asks."""
    began = time.perf_counter()
    for n in range(count):
        charge = f"ch_{tag}_{n}"
        resource = f"stripe:charge/{charge}"
        params = {"charge": charge, "amount": 1 + n % 50}
        with client.guard(REFUND, resource, params=params, before=ledger.state(charge)) as g:
            g.after = ledger.move(charge, params["amount"])
    refunds = time.perf_counter() - began
    until = dt.datetime.now(dt.UTC)
    began = time.perf_counter()
    for n in range(count):
        charge = f"ch_{tag}_ask_{n}"
        client.ask(REFUND, f"stripe:charge/{charge}", params={"charge": charge, "amount": 1})
    asks = time.perf_counter() - began
    return {
        "until": until,
        "refunds_per_s": round(count / refunds, 1),
        "decisions_per_s": round(count / asks, 1),
    }


def _worker(base: str, raw: str, ledger: Ledger, stop: threading.Event) -> None:
    from oversight_sdk import CompensationTask

    with _client(base, raw) as client:

        def read(task: CompensationTask) -> Any:
            return ledger.state(task.params["charge"])

        @client.compensator(REFUND, read=read)
        def charge_back(task: CompensationTask) -> Any:
            return ledger.move(task.params["charge"], -task.params["amount"])

        client.run_compensators(wait=1, stop=stop.is_set)


def _cpu_seconds(pid: int, *, children: bool = True) -> float:
    """A process's (and its children's) user + system CPU time so far (Linux)."""
    from decide import _descendants

    total = 0
    for each in _descendants(pid) if children else [pid]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def bench_compensations(
    base: str, pids: dict[str, int], agent: Any, raw: str, count: int, workers: int
) -> dict[str, Any]:
    from collections import Counter

    from django.conf import settings
    from django.db.models import Max

    from oversight.audit.actors import Actor
    from oversight.gateway.models import Action
    from oversight.rewind import bulk
    from oversight.rewind.models import Rewind, RewindItem
    from oversight.rewind.plan import Scope

    settings.REWIND_APPROVAL_THRESHOLD = count + 1  # runs at once: no second person here
    ledger, tag = Ledger(), f"w{workers}_{time.time_ns():x}"
    since = dt.datetime.now(dt.UTC)
    with _client(base, raw) as client:
        same_run = baseline(client, ledger, tag, count)
    scope = Scope(agent=agent, since=since, until=same_run.pop("until"))
    stop = threading.Event()
    threads = [
        threading.Thread(target=_worker, args=(base, raw, ledger, stop)) for _ in range(workers)
    ]
    for thread in threads:
        thread.start()
    pids = {**pids, "sdk_workers_and_ledger": os.getpid()}  # its children: the others
    began = time.perf_counter()
    cpu = {name: _cpu_seconds(pid, children=pid != os.getpid()) for name, pid in pids.items()}
    rewind = bulk.rewind_create(actor=Actor.system("bench"), scope=scope)
    deadline = began + max(120.0, count / 5)
    while Rewind.objects.get(pk=rewind.pk).state != "done":
        if time.perf_counter() > deadline:
            stop.set()
            raise RuntimeError(f"the rewind did not end: {rewind.items.filter(state='pending')}")
        time.sleep(0.05)
    wall = time.perf_counter() - began
    cpu = {
        name: _cpu_seconds(pid, children=pid != os.getpid()) - cpu[name]
        for name, pid in pids.items()
    }
    stop.set()
    for thread in threads:
        thread.join()
    rewind.refresh_from_db()
    compensations = Action.objects.filter(
        pk__in=RewindItem.objects.filter(rewind=rewind).values("compensation")
    )
    last = compensations.aggregate(last=Max("finished_at"))["last"]
    seconds = (last - rewind.created_at).total_seconds()
    undone = [c for c, v in ledger.refunded.items() if not c.startswith(f"ch_{tag}_ask")]
    return {
        "workers": workers,
        "runner": "a Celery worker (prefork, one process a core), no beat",
        "compensations": compensations.count(),
        "outcomes": dict(Counter(rewind.items.values_list("outcome", flat=True))),
        "ledger_back_to_zero": all(ledger.refunded[c] == 0 for c in undone),
        "seconds_to_last_report": round(seconds, 2),
        "compensations_per_s": round(compensations.count() / seconds, 1),
        "seconds_to_done": round(wall, 2),
        "cpu_ms_per_compensation": {
            name: round(seconds * 1000 / count, 2) for name, seconds in cpu.items()
        },
        "load_average": os.getloadavg(),
        **same_run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan-actions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--refunds", type=int, default=1_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ or "REDIS_URL" not in os.environ:
        sys.exit(
            "Set DATABASE_URL (and DATABASE_OWNER_URL) to a PostgreSQL database to fill, and"
            " REDIS_URL to a Redis database for the broker."
        )
    fresh_database()
    _setup_django()
    (plan_agent, plan_token, _), (agent, _, raw) = make_agents()
    plan = bench_plan(plan_agent, plan_token, args.plan_actions, args.runs)
    print(json.dumps(plan, indent=1))
    server, base = serve()
    celery = runner()
    try:
        runs = []
        pids = {"server": server.pid, "runner": celery.pid}
        for workers in args.workers:
            runs.append(bench_compensations(base, pids, agent, raw, args.refunds, workers))
            print(json.dumps(runs[-1], indent=1))
    finally:
        for process in (celery, server):
            process.terminate()
            process.wait(timeout=20)
    report = {
        "benchmark": "rewind",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "targets": {"plan_s": PLAN_TARGET_S, "compensations_per_s": RATE_TARGET},
        "plan": plan,
        "compensations": runs,
    }
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H%M")
    out = args.out or ROOT / "bench" / "results" / f"rewind-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
