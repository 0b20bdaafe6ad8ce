#!/usr/bin/env python
"""Decisions under a rollout: POST /api/v1/actions with no rollout, with a candidate in
shadow, and with a canary at 50 %, on the same server in the same run.

Usage (as root or a user who can run PostgreSQL's initdb; loopback only):

    .venv/bin/python bench/rollout.py              # the full run, about 8 minutes
    .venv/bin/python bench/rollout.py --quick      # a smoke run, about 2 minutes

What it does, all on 127.0.0.1 (bench/decide.py's parts: its PostgreSQL cluster with the
durable defaults, its agent, policy and token, its server, wrk, hey, CPU accounting and
wait for a quiet machine):

1. Sets up as bench/decide.py does (50 grants, 10 rules, 3 limits), then, through the
   services, cuts a candidate release: one more forbid rule (refunds over 400, about 5 %
   of the benchmark's requests) makes release N+1, and rolling back to N makes N's
   content stable again as N+2. N+1 is the candidate, a release that is not stable.
2. Serves `uvicorn oversight.asgi:application --workers 2` (DB_POOL_MAX=20, DEBUG off, no
   REDIS_URL) and keeps one process of its own that switches the agent between three
   states through the rollout services, without restarting the server:
   - none: no rollout (the baseline; a running rollout is rolled back);
   - shadow: `rollout_start(stage="shadow")`, every decision also evaluates the candidate;
   - canary: `rollout_start(stage="canary", plan=[50, 100])`, half the sessions are
     decided under the candidate.
3. Measures maximum decisions/s with wrk (bench/wrk_post.lua, 32 connections, a new
   charge per request, each in one of 1,000 sessions) in --rounds alternated rounds, the
   states' order rotated each round; each state's ratio is to the same round's no-rollout
   figure, and the target's measure is the median of the rounds' ratios (>= 0.9). Then
   p50/p99 at a fixed 200/s (hey -c 20 -q 10) with none and shadow, alternated.
4. Records per run the CPU per request, the server's RSS, and afterwards counts in the
   database what each run's decisions recorded: release versions, shadow versions and
   shadow statuses (a shadow run's decisions all carry a shadow status; a canary run's
   are decided under both versions). Writes bench/results/rollout-<date>-<HHMM>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

from decide import (  # noqa: E402
    VENV_BIN,
    Postgres,
    Runner,
    Server,
    ServerConfig,
    _interrupt,
    ensure_tools,
    hey,
    project_env,
    python_speed,
    report_head,
    rule_create,
    run,
    say,
    versions,
    wrk,
)

RESULTS = BENCH / "results"
STATES = ("none", "shadow", "canary")
CANARY_PERCENT = 50
SESSIONS = 1000
CONNECTIONS = 32
CANDIDATE_RULE = ("refunds over 400", "forbid", "payments.refund", "*", "params.amount > 400")


# --- pure parts ---------------------------------------------------------------------------


def round_order(round_no: int, states: tuple[str, ...] = STATES) -> list[str]:
    """The states' order in one round, rotated by one each round, so that each state runs
    first, second and third as often as the rounds allow."""
    shift = round_no % len(states)
    return [*states[shift:], *states[:shift]]


def summarize(runs: list[dict[str, Any]], baseline: str = "none") -> dict[str, Any]:
    """Per state: the medians of its runs, and its ratios to the baseline of the same round
    (the target's measure is their median)."""
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["state"]] = r
    out: dict[str, Any] = {}
    for state in dict.fromkeys(r["state"] for r in runs):
        mine = [r for r in runs if r["state"] == state]
        pairs = [
            (rounds[state], rounds[baseline])
            for _, rounds in sorted(by_round.items())
            if state in rounds and baseline in rounds and rounds[baseline]["rps"]
        ]
        ratios = [got["rps"] / base["rps"] for got, base in pairs]
        # The same comparison by CPU per request (server and PostgreSQL): the baseline's
        # over the state's, so that below 1 is dearer, like the throughput ratio. Other
        # processes' load moves it less than it moves the maxima.
        cpu = [_cpu(base) / _cpu(got) for got, base in pairs if _cpu(got) and _cpu(base)]
        out[state] = {
            "runs": len(mine),
            "rps": [r["rps"] for r in mine],
            "rps_median": round(statistics.median(r["rps"] for r in mine), 1),
            "p50_ms_median": round(statistics.median(r["latency_ms"]["p50"] for r in mine), 2),
            "p99_ms_median": round(statistics.median(r["latency_ms"]["p99"] for r in mine), 2),
            "server_cpu_ms_per_request_median": _median_of(mine, "server"),
            "postgres_cpu_ms_per_request_median": _median_of(mine, "postgres"),
            "rss_mib_median": round(statistics.median(r["rss_mib_after"] for r in mine), 1),
            "round_ratios": [round(x, 3) for x in ratios],
            "ratio": round(statistics.median(ratios), 3) if ratios else None,
            "round_cpu_ratios": [round(x, 3) for x in cpu],
            "cpu_ratio": round(statistics.median(cpu), 3) if cpu else None,
        }
    return out


def _cpu(run_: dict[str, Any]) -> float:
    per = run_["cpu"].get("cpu_ms_per_request", {})
    return (per.get("server") or 0.0) + (per.get("postgres") or 0.0)


def _median_of(runs: list[dict[str, Any]], part: str) -> float | None:
    values = [r["cpu"].get("cpu_ms_per_request", {}).get(part) for r in runs]
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def check_recorded(state: str, counts: list[dict[str, Any]], candidate: int) -> dict[str, Any]:
    """What one run's decisions recorded, against what its state should record: under
    shadow every decision has the candidate's verdict beside it; under the canary some are
    decided by the candidate and some by stable, and none has a shadow verdict."""
    total = sum(c["count"] for c in counts)
    shadowed = sum(c["count"] for c in counts if c["shadow_status"])
    by_candidate = sum(c["count"] for c in counts if c["release_version"] == candidate)
    versions = sorted({c["release_version"] for c in counts if c["release_version"]})
    if state == "shadow":
        ok = total > 0 and shadowed == total and by_candidate == 0
    elif state == "canary":
        ok = shadowed == 0 and len(versions) == 2 and 0 < by_candidate < total
    else:
        ok = total > 0 and shadowed == 0 and by_candidate == 0
    return {
        "decisions": total,
        "with_shadow_status": shadowed,
        "decided_by_candidate": by_candidate,
        "release_versions": versions,
        "ok": ok,
    }


# --- in the project (subprocesses, after django.setup()) ---------------------------------


def candidate_prepare(actor: Any, agent: Any) -> dict[str, int]:
    """A candidate release for ``agent`` through the services: one more forbid rule cuts
    N+1 (promoted), rolling back to N makes N's content stable again as N+2."""
    from oversight.releases.services import release_rollback

    before = agent.stable_release
    rule_create(actor, agent, CANDIDATE_RULE)
    agent.refresh_from_db()
    candidate = agent.stable_release
    release_rollback(actor=actor, release=before)
    agent.refresh_from_db()
    return {
        "baseline": before.version,
        "candidate": candidate.version,
        "candidate_id": candidate.pk,
        "stable": agent.stable_version,
    }


def state_set(actor: Any, agent: Any, state: str, candidate_id: int) -> dict[str, Any]:
    """Put the agent in ``state`` through the rollout services: a running rollout is
    rolled back, then (for shadow and canary) the candidate's rollout starts."""
    from oversight.releases.models import Release, Stage
    from oversight.releases.rollouts import live_rollout, rollout_roll_back, rollout_start

    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    live = live_rollout(agent)
    if live is not None:
        rollout_roll_back(actor=actor, rollout=live, why=f"benchmark: now {state}")
    if state != "none":
        release = Release.objects.get(pk=candidate_id)
        stage = Stage.SHADOW if state == "shadow" else Stage.CANARY
        rollout_start(
            actor=actor,
            release=release,
            stage=stage,
            plan=[CANARY_PERCENT, 100],
            auto_advance=False,
        )
    agent.refresh_from_db()
    return {
        "state": state,
        "rollout_stage": agent.rollout_stage,
        "candidate_version": agent.candidate_version,
        "canary_share": agent.canary_share,
    }


def _setup_candidate(slug: str) -> dict[str, int]:
    import django

    django.setup()
    from oversight.agents.models import Agent
    from oversight.audit.actors import Actor

    return candidate_prepare(Actor.system("bench"), Agent.objects.get(slug=slug))


def _switch_loop(slug: str, candidate_id: int) -> None:
    """One process for the whole run: a state's name on each line of stdin, the agent's
    rollout fields after the switch on stdout."""
    import django

    django.setup()
    from django.db import close_old_connections

    from oversight.agents.models import Agent
    from oversight.audit.actors import Actor

    actor = Actor.system("bench")
    print("BENCH_JSON {}", flush=True)
    for line in sys.stdin:
        close_old_connections()
        agent = Agent.objects.select_related("team", "owner").get(slug=slug)
        print("BENCH_JSON " + json.dumps(state_set(actor, agent, line.strip(), candidate_id)))
        sys.stdout.flush()


class Switcher:
    """The parent's end of the switching process."""

    def __init__(self, env: dict[str, str], slug: str, candidate_id: int) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, __file__, "--switch-loop", slug, str(candidate_id)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("BENCH_JSON "):
                return json.loads(line.removeprefix("BENCH_JSON "))
        raise RuntimeError("the switching process stopped")

    def set(self, state: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(state + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)


# --- the run ------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def measured(server: Server, fn: Any) -> Any:
    """Wrap a measurement: its wall-clock window (to find its decisions afterwards) and
    the server's memory after it."""

    def inner() -> dict[str, Any]:
        began = _now()
        result = fn()
        result["window"] = [began.isoformat(), _now().isoformat()]
        result["rss_mib_after"] = server.memory()["rss_mib_total"]
        return result

    return inner


def recorded_in(pg: Postgres, window: list[str]) -> list[dict[str, Any]]:
    with pg.connect() as conn:
        rows = conn.execute(
            """
            SELECT release_version, shadow_version, shadow_status, status, count(*)
            FROM gateway_action WHERE created_at >= %s AND created_at < %s
            GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            """,
            [window[0], window[1]],
        ).fetchall()
    keys = ("release_version", "shadow_version", "shadow_status", "status", "count")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def measure_states(
    server: Server, pg: Postgres, switcher: Switcher, token: str, runner: Runner
) -> list[dict[str, Any]]:
    args, runs = runner.args, []
    for round_no in range(args.rounds):
        for state in round_order(round_no):
            switched = switcher.set(state)
            say(f"round {round_no + 1}: {state} ({switched})")
            # the first decisions after a switch read the agent's row again; not counted
            wrk(server, pg, "decide", CONNECTIONS, 2, token, measure=False, sessions=SESSIONS)
            r = runner.measure(
                f"round {round_no + 1}: {state}",
                measured(
                    server,
                    lambda: wrk(
                        server, pg, "decide", CONNECTIONS, args.seconds, token, sessions=SESSIONS
                    ),
                ),
            )
            runs.append({"state": state, "round": round_no, "agent": switched, **r})
    return runs


def measure_fixed_rate(
    server: Server, pg: Postgres, switcher: Switcher, token: str, runner: Runner
) -> list[dict[str, Any]]:
    """p50/p99 at 200/s (hey -c 20 -q 10, as bench/decide.py's fixed rate), none and
    shadow alternated."""
    args, runs = runner.args, []
    for round_no in range(args.rate_rounds):
        for state in round_order(round_no, ("none", "shadow")):
            switched = switcher.set(state)
            say(f"200/s, round {round_no + 1}: {state}")
            r = runner.measure(
                f"200/s round {round_no + 1}: {state}",
                measured(server, lambda: hey(server, pg, "decide", args.rate_seconds, token, 20)),
            )
            runs.append({"state": state, "round": round_no, "agent": switched, **r})
    return runs


def _slim(run_: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run_.items() if k not in ("backends_waiting_on",)}


def print_summary(report: dict[str, Any]) -> None:
    print("\n== Decisions under a rollout, same server, same run\n")
    header = (
        f"{'state':<8}{'runs':>5}{'median/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'srv CPU':>9}{'pg CPU':>8}{'RSS MiB':>9}  ratio (rounds)"
    )
    print(header)
    print("-" * len(header))
    for state, s in report["summary"].items():
        print(
            f"{state:<8}{s['runs']:>5}{s['rps_median']:>10.0f}{s['p50_ms_median']:>8.2f}"
            f"{s['p99_ms_median']:>8.2f}{s['server_cpu_ms_per_request_median'] or 0:>9.3f}"
            f"{s['postgres_cpu_ms_per_request_median'] or 0:>8.3f}{s['rss_mib_median']:>9.1f}"
            f"  {s['ratio']} {s['round_ratios']}"
        )
    print("CPU per request (server + PostgreSQL), no rollout's over the state's, by round:")
    for state, s in report["summary"].items():
        print(f"  {state:<8} {s['cpu_ratio']} {s['round_cpu_ratios']}")
    if report.get("fixed_rate"):
        print("\nAt 200/s (hey -c 20 -q 10):")
        for state, s in report["fixed_rate_summary"].items():
            print(f"  {state:<8} p50 {s['p50_ms_median']} ms, p99 {s['p99_ms_median']} ms")
    met = {True: "met", False: "NOT met"}
    t = report["target"]
    print(
        f"\nTarget (each rollout state >= 0.9x no rollout, median of rounds): shadow "
        f"{t['shadow_ratio']}x, canary {t['canary_ratio']}x: {met[t['met']]}."
    )
    print(f"Recorded as expected in every run: {report['recorded_ok']}")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="alternated rounds of the states")
    parser.add_argument("--seconds", type=int, default=15, help="each wrk run")
    parser.add_argument("--rate-rounds", type=int, default=2, help="rounds at 200/s (0: none)")
    parser.add_argument("--rate-seconds", type=int, default=15, help="each run at 200/s")
    parser.add_argument("--max-other", type=float, default=0.25)
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--retry-budget", type=int, default=90)
    parser.add_argument("--quiet-wait", type=float, default=5)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 6 s, 1 at 200/s")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results")
    parser.add_argument("--setup-candidate", metavar="SLUG", help=argparse.SUPPRESS)
    parser.add_argument("--switch-loop", nargs=2, metavar="X", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.rate_rounds, args.rate_seconds = 2, 6, 1, 6
        args.retries = 0
    return args


def main() -> None:
    args = _parse()
    if args.setup_candidate:  # subprocess modes, with the environment set by the parent
        print("BENCH_JSON " + json.dumps(_setup_candidate(args.setup_candidate)))
        return
    if args.switch_loop:
        _switch_loop(args.switch_loop[0], int(args.switch_loop[1]))
        return

    ensure_tools()
    signal.signal(signal.SIGTERM, _interrupt)
    began = time.monotonic()
    stamp = _now().strftime("%Y-%m-%d-%H%M")
    work = Path(tempfile.mkdtemp(prefix="oversight-rollout-"))
    pg = Postgres(work)
    server: Server | None = None
    switcher: Switcher | None = None
    try:
        say(f"PostgreSQL {pg.bin.parent.name} in {work} on port {pg.port} (durable defaults)")
        pg.start()
        env = project_env(pg)
        say("migrating")
        run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env)
        say("agent, policy and token (bench/decide.py's), then the candidate release")
        out = run([sys.executable, str(BENCH / "decide.py"), "--setup-only"], cwd=ROOT, env=env)
        setup = json.loads(out.stdout.split("BENCH_JSON ", 1)[1])
        token = setup.pop("token")
        out = run(
            [sys.executable, __file__, "--setup-candidate", setup["agent"]], cwd=ROOT, env=env
        )
        releases = json.loads(out.stdout.split("BENCH_JSON ", 1)[1])
        say(f"releases: {releases}")
        report: dict[str, Any] = {
            **report_head("bench/rollout.py"),
            "versions": versions(),
            "postgres": pg.settings(),
            "python_speed_us": {"start": python_speed()},
            "setup": setup,
            "releases": releases,
            "candidate_rule": dict(
                zip(
                    ("name", "effect", "action", "resource", "condition"),
                    CANDIDATE_RULE,
                    strict=True,
                )
            ),
            "connections": CONNECTIONS,
            "sessions": SESSIONS,
            "canary_percent": CANARY_PERCENT,
        }
        config = ServerConfig(2, 20)
        server = Server(pg, config, work / "uvicorn.log")
        say(f"serving: {config.label}")
        server.start()
        report["command"] = " ".join(server.command).replace(str(VENV_BIN) + "/", ".venv/bin/")
        report["memory_before"] = server.memory()
        switcher = Switcher(env, setup["agent"], releases["candidate_id"])
        say("warm-up (5 s, not counted)")
        wrk(server, pg, "decide", 16, 5, token, measure=False, sessions=SESSIONS)
        runner = Runner(args)
        runs = measure_states(server, pg, switcher, token, runner)
        fixed = measure_fixed_rate(server, pg, switcher, token, runner) if args.rate_rounds else []
        switcher.set("none")
        report["memory_after"] = server.memory()
        report["server_log_problems"] = server.errors_logged()
        server.stop()
        server = None

        for r in runs + fixed:
            r["recorded"] = recorded_in(pg, r["window"])
            r["check"] = check_recorded(r["state"], r["recorded"], releases["candidate"])
        report["runs"] = [_slim(r) for r in runs]
        report["fixed_rate"] = [_slim(r) for r in fixed]
        report["summary"] = summarize(runs)
        if fixed:
            report["fixed_rate_summary"] = summarize(fixed)
        report["recorded_ok"] = all(r["check"]["ok"] for r in runs + fixed)
        shadow, canary = report["summary"]["shadow"]["ratio"], report["summary"]["canary"]["ratio"]
        report["target"] = {
            "shadow_ratio": shadow,
            "canary_ratio": canary,
            "met": shadow >= 0.9 and canary >= 0.9,
        }
        report["python_speed_us"]["end"] = python_speed()
        report["seconds_total"] = round(time.monotonic() - began, 1)
        print_summary(report)
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            path = RESULTS / f"rollout-{stamp}.json"
            path.write_text(json.dumps(report, indent=1, default=str) + "\n")
            say(f"wrote {path.relative_to(ROOT)} ({report['seconds_total']} s in all)")
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    finally:
        if switcher is not None:
            switcher.close()
        if server is not None:
            server.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
