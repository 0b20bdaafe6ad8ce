#!/usr/bin/env python
"""The behaviour diff (oversight/incidents/behaviour_diff.py) of two releases over 100,000
decisions, beside plain counts of the same rows in the same run.

Usage (a PostgreSQL server it may drop, create and migrate the database on; loopback only):

    DATABASE_URL=postgres://oversight_runtime@127.0.0.1:55500/oversight_diffbench \\
    DATABASE_OWNER_URL=postgres://oversight_owner@127.0.0.1:55500/oversight_diffbench \\
        .venv/bin/python bench/behaviour_diff.py        # 100,000 decisions, 7 timed runs

or the zero-install SQLite, in a file it deletes and creates:

    DATABASE_URL=sqlite:////tmp/oversight-diffbench.sqlite3 .venv/bin/python bench/behaviour_diff.py

What it does:

1. Drops and creates the database (as its owner) and migrates it; through the services,
   the refund bot of bench/decide.py with two releases (each a policy change) and
   another agent of the same team.
2. Records --rows decisions of the refund bot with bulk_create (not through the API),
   half under each release, the first half over the day before yesterday and the
   second over yesterday, in production: 8 actions, resources with a fresh id each
   (``stripe:charge/ch_<n>``: one distinct resource per decision, the families'
   worst case), numeric params (amount, count, a ratio) beside strings and booleans,
   first decisions and statuses in proportions an agent shows. The second release
   differs: more denials, larger refunds, a new action (``payments.wire``) and a new
   resource family (``s3://exports``). Plus --other-rows decisions of the other agent,
   so that the diff's rows are not the whole table. Then ANALYZE.
3. Times, in --runs rounds (each round every measurement once, in turn, so that the
   machine's other load falls on all alike): ``behaviour_diff`` of the two releases,
   the baselines ``COUNT(*)`` of the same rows and ``GROUP BY action`` of them, the diff
   over the two days as windows, and each of its reads alone (the mix, the families, the
   numeric params). Medians, min and max, and the diff's ratio to ``COUNT(*)`` per round.
   Then loading the same rows as model instances (what the diff must not do), in
   --naive-runs runs.
4. Prints a summary and writes bench/results/behaviour-diff-<date>-<HHMM>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 2.0
ACTIONS = [  # name, weight, resource prefix, numeric params
    ("payments.refund", 30, "stripe:charge/ch_", ("amount",)),
    ("payments.charge", 15, "stripe:charge/ch_", ("amount",)),
    ("crm.contact.update", 20, "crm:contact/", ("fields",)),
    ("crm.contact.read", 15, "crm:contact/", ()),
    ("email.send", 10, "email:thread/", ("recipients",)),
    ("billing.credit.issue", 5, "billing:account/", ("amount", "ratio")),
    ("db.query", 4, "db:orders:", ("rows",)),
    ("mcp.files.read", 1, "files:/shared/", ()),
]


def _setup_django() -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from rewind import _setup_django as setup

    setup()  # production settings, DEBUG off, no Redis, quiet logs


_NUMBERS: dict[str, Callable[[random.Random, bool], float]] = {
    # The candidate refunds, charges and credits three times as much.
    "amount": lambda rng, candidate: round(rng.lognormvariate(4, 1) * (3 if candidate else 1), 2),
    "fields": lambda rng, _candidate: rng.randrange(1, 8),
    "recipients": lambda rng, _candidate: rng.randrange(1, 40),
    "ratio": lambda rng, _candidate: rng.random(),
    "rows": lambda rng, _candidate: rng.randrange(10_000),
}


def _draw(rng: random.Random, candidate: bool) -> dict[str, Any]:
    names = [a[0] for a in ACTIONS] + (["payments.wire"] if candidate else [])
    weights = [a[1] for a in ACTIONS] + ([3] if candidate else [])
    action = rng.choices(names, weights)[0]
    prefix, numeric = next(
        ((p, n) for name, _w, p, n in ACTIONS if name == action), ("s3://exports/", ("amount",))
    )
    params: dict[str, Any] = {"currency": "eur", "live": rng.random() < 0.9}
    for key in numeric:
        params[key] = _NUMBERS[key](rng, candidate)
    deny, hold = (0.08, 0.05) if candidate else (0.04, 0.05)
    roll = rng.random()
    decision = "denied" if roll < deny else "pending" if roll < deny + hold else "allowed"
    if decision == "allowed":
        status = rng.choices(["succeeded", "failed", "allowed"], [90, 4, 6])[0]
    elif decision == "pending":
        status = rng.choices(["succeeded", "rejected", "expired", "pending"], [60, 25, 10, 5])[0]
    else:
        status = "denied"
    return {
        "action": action,
        "resource": f"{prefix}{rng.randrange(10**9)}",
        "params": params,
        "decision": decision,
        "status": status,
    }


# Each of an agent's rows (of one release) at a random moment of the span after start.
_SPREAD = {
    "postgresql": "UPDATE gateway_action SET created_at = %s + random() * %s * interval '1 second'"
    " WHERE agent_id = %s AND release_version IS NOT DISTINCT FROM %s",
    # Django keeps SQLite datetimes as UTC text, "YYYY-MM-DD HH:MM:SS.ffffff".
    "sqlite": "UPDATE gateway_action SET created_at = strftime('%%Y-%%m-%%d %%H:%%M:%%f',"
    " %s, '+' || ((abs(random()) %% (%s * 1000)) / 1000.0) || ' seconds')"
    " WHERE agent_id = %s AND release_version IS %s",
}


def fresh_sqlite() -> None:
    """The zero-install database, from scratch: a new file, migrated."""
    path = Path(os.environ["DATABASE_URL"].removeprefix("sqlite:///"))
    path.unlink(missing_ok=True)
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def setup_data(rows: int, other_rows: int, seed: int) -> dict[str, Any]:
    from decide import refund_agent_create
    from django.db import connection

    from oversight.agents.services import agent_create
    from oversight.audit.actors import Actor
    from oversight.gateway.models import Action
    from oversight.policy.models import Grant
    from oversight.policy.services import policy_object_create

    actor = Actor.system("bench")
    agent = refund_agent_create(actor)
    other = agent_create(
        actor=actor, name="Other bot", purpose="Other traffic.", owner=agent.owner, team=agent.team
    )
    versions = []
    for action in ("payments.refund", "payments.wire"):
        policy_object_create(actor=actor, obj=Grant(agent=agent, action=action))
        agent.refresh_from_db()
        versions.append(agent.stable_version)
    rng = random.Random(seed)  # noqa: S311  (synthetic data, reproducible)
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    day = dt.timedelta(days=1)
    plan = [
        (agent, versions[0], now - 2 * day, rows // 2, False),
        (agent, versions[1], now - day, rows - rows // 2, True),
        (other, None, now - 2 * day, other_rows, False),
    ]
    for who, version, start, count, candidate in plan:
        batch = []
        for _ in range(count):
            batch.append(
                Action(
                    agent=who,
                    environment="production",
                    release_version=version,
                    request_hash="0" * 64,
                    **_draw(rng, candidate),
                )
            )
        Action.objects.bulk_create(batch, batch_size=5000)
        span = (2 if who == other else 1) * 86400
        with connection.cursor() as cursor:  # auto_now_add stamped them now
            at = start if connection.vendor == "postgresql" else f"{start:%Y-%m-%d %H:%M:%S}"
            cursor.execute(_SPREAD[connection.vendor], [at, span, who.pk, version])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE gateway_action" if connection.vendor == "postgresql" else "ANALYZE")
    return {"slug": agent.slug, "versions": versions, "windows_start": (now - 2 * day).isoformat()}


def _summary(seconds: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(seconds), 4),
        "min_s": round(min(seconds), 4),
        "max_s": round(max(seconds), 4),
        "runs_s": [round(s, 4) for s in seconds],
    }


def _rounds(calls: dict[str, Callable[[], Any]], runs: int) -> dict[str, list[float]]:
    """Each call once a round, in turn, ``runs`` rounds: the machine's other load falls on
    all of them alike, and each round's ratios compare like with like."""
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def measure(setup: dict[str, Any], runs: int, naive_runs: int) -> dict[str, Any]:
    from django.db.models import Count

    from oversight.agents.models import Agent
    from oversight.incidents import diff_queries
    from oversight.incidents.behaviour_diff import Side, behaviour_diff, side_decisions

    agent = Agent.objects.get(slug=setup["slug"])
    old, new = setup["versions"]
    left, right = Side.release(old), Side.release(new)
    start = dt.datetime.fromisoformat(setup["windows_start"])
    day = dt.timedelta(days=1)
    windows = Side.window(start, start + day), Side.window(start + day, start + 2 * day)
    queries = side_decisions(agent=agent, side=left), side_decisions(agent=agent, side=right)

    found = behaviour_diff(agent=agent, left=left, right=right)  # a warm-up, and the result
    seconds = _rounds(
        {
            "behaviour_diff_releases": lambda: behaviour_diff(agent=agent, left=left, right=right),
            "baseline_count_both_sides": lambda: [q.all().count() for q in queries],
            "baseline_group_by_action_both_sides": lambda: [
                list(q.order_by().values("action").annotate(n=Count("pk"))) for q in queries
            ],
            "behaviour_diff_windows": lambda: behaviour_diff(
                agent=agent, left=windows[0], right=windows[1]
            ),
            "part_mix_both_sides": lambda: [diff_queries.mix_counts(q) for q in queries],
            "part_families_both_sides": lambda: [diff_queries.family_counts(q) for q in queries],
            "part_params": lambda: diff_queries.param_distributions(*queries),
        },
        runs,
    )
    seconds |= _rounds(
        {"baseline_load_instances_both_sides": lambda: [len(list(q.all())) for q in queries]},
        naive_runs,
    )
    results = {name: _summary(values) for name, values in seconds.items()}
    diffs, counts = seconds["behaviour_diff_releases"], seconds["baseline_count_both_sides"]
    ratios = [d / c for d, c in zip(diffs, counts, strict=True)]
    results["ratio_diff_to_count_per_round"] = {
        "median": round(statistics.median(ratios), 2),
        "rounds": [round(r, 2) for r in ratios],
    }
    summary = {
        "left": found.left.decisions,
        "right": found.right.decisions,
        "comparisons": found.comparisons,
        "flagged": [f"{row.kind}: {row.name}" for row in found.flagged],
        "params": len(found.params),
        "families": len(found.families),
        "actions": len(found.actions),
    }
    return {"timings": results, "diff": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--other-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--naive-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        sys.exit("Set DATABASE_URL (and DATABASE_OWNER_URL) to a PostgreSQL database.")
    sys.path[:0] = [str(ROOT / "bench")]
    from decide import report_head
    from rewind import fresh_database

    head = report_head("behaviour_diff")
    print("creating and migrating the database ...")
    if os.environ["DATABASE_URL"].startswith("sqlite:///"):
        fresh_sqlite()
    else:
        fresh_database()
        _setup_django()
    started = time.perf_counter()
    setup = setup_data(args.rows, args.other_rows, args.seed)
    setup["seconds"] = round(time.perf_counter() - started, 1)
    print(f"recorded {args.rows:,} + {args.other_rows:,} decisions in {setup['seconds']} s")
    result = measure(setup, args.runs, args.naive_runs)
    timings = result["timings"]
    median = timings["behaviour_diff_releases"]["median_s"]
    report = {**head, "setup": setup, "target_s": TARGET_S, **result}
    report["target_met"] = median <= TARGET_S
    report["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    print()
    for name, timing in timings.items():
        if "median_s" in timing:
            print(f"  {name:<40} median {timing['median_s']:.4f} s"
                  f" (min {timing['min_s']:.4f}, max {timing['max_s']:.4f})")  # fmt: skip
    ratio = timings["ratio_diff_to_count_per_round"]
    print(f"  the diff over COUNT(*), per round: median {ratio['median']}x {ratio['rounds']}")
    print(f"\ndiff: {result['diff']}")
    print(f"target {TARGET_S} s: {'met' if report['target_met'] else 'NOT met'} ({median} s)")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H%M")
    vendor = "-sqlite" if os.environ["DATABASE_URL"].startswith("sqlite") else ""
    out = ROOT / "bench" / "results" / f"behaviour-diff{vendor}-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("wrote", out.relative_to(ROOT))


if __name__ == "__main__":
    main()
