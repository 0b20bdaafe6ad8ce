#!/usr/bin/env python
"""Rewind: the plan of 10,000 actions, and 1,000 compensations executed through the SDK's
worker, beside the decision pipeline's rate in the same run.

Usage (a PostgreSQL server it may drop, create and migrate the database on; loopback only):

    DATABASE_URL=postgres://oversight_runtime@127.0.0.1:55500/oversight_rwbench \\
    DATABASE_OWNER_URL=postgres://oversight_owner@127.0.0.1:55500/oversight_rwbench \\
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
3. Serves Oversight as in production (`uvicorn oversight.asgi:application`, DEBUG off,
   one worker, no periodic jobs in the server).
4. **Compensations**, for each worker count of --workers (threads, one SDK client each):
   - --refunds refunds, one per charge, through the SDK's `guard` over a toy ledger
     (decided by the pipeline, run, reported: real succeeded actions with their audit);
     their rate is the pipeline's same-run baseline (decide + report), and --refunds
     more `ask`s alone (decide only), with the same client settings;
   - a bulk rewind of them (`rewind_create`; the runner `rewind_step` in a loop in this
     process, or every --beat seconds as the beat job does with --beat; the first step
     runs in `rewind_create`'s commit, as "each change runs a step at once" does);
   - the workers' `run_compensators` over the ledger until the rewind is done.
   The rate is compensations reported over the time from `rewind_create` to the last
   report (the server's `finished_at`); the ledger must be back to zero on every charge.
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
    """Production settings (DEBUG off), no Redis (Celery eager), quiet logs."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return {
        **env,
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
    os.environ.pop("REDIS_URL", None)
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
    scope = bulk.Scope(agent=agent, since=since, until=dt.datetime.now(dt.UTC))
    plan = bulk.rewind_plan(scope=scope)
    actor = Actor.system("bench")
    result = {
        "actions": plan["actions"],
        "to_undo": plan["to_undo"],
        "seed_s": round(seeded, 2),
        "rewind_plan_s": _timed(lambda: bulk.rewind_plan(scope=scope), runs),
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


def serve() -> tuple[subprocess.Popen[bytes], str]:
    from mcp_proxy import free_port

    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "oversight.asgi:application"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    env = {k: v for k, v in _env().items() if k != "DATABASE_OWNER_URL"}
    process = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603
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


def _cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_compensations(
    base: str, server_pid: int, agent: Any, raw: str, count: int, workers: int, beat: float
) -> dict[str, Any]:
    from collections import Counter

    from django.conf import settings
    from django.db.models import Max

    from oversight.audit.actors import Actor
    from oversight.gateway.models import Action
    from oversight.rewind import bulk
    from oversight.rewind.models import Rewind, RewindItem

    settings.REWIND_APPROVAL_THRESHOLD = count + 1  # runs at once: no second person here
    ledger, tag = Ledger(), f"w{workers}b{int(beat)}_{time.time_ns():x}"
    since = dt.datetime.now(dt.UTC)
    with _client(base, raw) as client:
        same_run = baseline(client, ledger, tag, count)
    scope = bulk.Scope(agent=agent, since=since, until=same_run.pop("until"))
    stop = threading.Event()
    threads = [
        threading.Thread(target=_worker, args=(base, raw, ledger, stop)) for _ in range(workers)
    ]
    for thread in threads:
        thread.start()
    began, steps = time.perf_counter(), 0
    cpu = (_cpu_seconds(server_pid), _cpu_seconds(os.getpid()))
    rewind = bulk.rewind_create(actor=Actor.system("bench"), scope=scope)
    while Rewind.objects.get(pk=rewind.pk).state != "done":
        due = began + (steps + 1) * beat  # the beat fires every `beat` seconds
        bulk.rewind_step(rewind_id=rewind.pk)
        steps += 1
        # In a loop: 0.1 s between steps (a step scans every open item; a tighter loop
        # only takes the workers' share of the CPU); or on the beat's schedule.
        time.sleep(max(0.0, due - time.perf_counter()) if beat else 0.1)
    wall = time.perf_counter() - began
    server_cpu = _cpu_seconds(server_pid) - cpu[0]
    own_cpu = _cpu_seconds(os.getpid()) - cpu[1]
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
        "runner": f"beat every {beat} s" if beat else "rewind_step every 0.1 s",
        "compensations": compensations.count(),
        "outcomes": dict(Counter(rewind.items.values_list("outcome", flat=True))),
        "ledger_back_to_zero": all(ledger.refunded[c] == 0 for c in undone),
        "seconds_to_last_report": round(seconds, 2),
        "compensations_per_s": round(compensations.count() / seconds, 1),
        "seconds_to_done": round(wall, 2),
        "runner_steps": steps,
        "cpu_ms_per_compensation": {
            "server": round(server_cpu * 1000 / count, 2),
            "runner_and_workers": round(own_cpu * 1000 / count, 2),
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
    parser.add_argument("--beat", type=float, default=0.0, help="seconds between runner steps")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        sys.exit("Set DATABASE_URL (and DATABASE_OWNER_URL) to a PostgreSQL database to fill.")
    fresh_database()
    _setup_django()
    (plan_agent, plan_token, _), (agent, _, raw) = make_agents()
    plan = bench_plan(plan_agent, plan_token, args.plan_actions, args.runs)
    print(json.dumps(plan, indent=1))
    server, base = serve()
    try:
        runs = []
        for workers in args.workers:
            runs.append(
                bench_compensations(base, server.pid, agent, raw, args.refunds, workers, args.beat)
            )
            print(json.dumps(runs[-1], indent=1))
    finally:
        server.terminate()
        server.wait(timeout=20)
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
