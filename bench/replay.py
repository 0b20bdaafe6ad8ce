#!/usr/bin/env python
"""Replay (oversight/releases/replay.py) over 100,000 recorded decisions, beside the
policy engine's own rate on the same requests, in the same run.

Usage (a PostgreSQL server it may create a database on and migrate; loopback only):

    DATABASE_URL=postgres://oversight_runtime@127.0.0.1:55500/oversight_replay_bench \\
    DATABASE_OWNER_URL=postgres://oversight_owner@127.0.0.1:55500/oversight_replay_bench \\
        .venv/bin/python bench/replay.py            # 100,000 rows, 5 timed runs

What it does:

1. Creates the database if it is missing (as the owner) and migrates it as the owner.
2. In a subprocess (so that its memory is not counted), through the services: a team, an
   owner, two reviewers and an agent with 20 grants and 30 rules (forbid, hold, permit;
   most with a CEL condition; the generators of bench/engine.py), then a stricter
   candidate (three more rules: Stripe amounts and credits over 1,000 forbidden, deletes
   of CRM contacts held), then rolls stable back to the content before them (so the
   candidate is not in force). It records --rows actions with bulk_create (not through
   the API): the requests of bench/engine.py, spread over the last 6 days, 80 % under the
   release before the candidate's rules, 15 % under the one before that and 5 % naming no
   release (compared under stable), each with the status its release's engine decided.
3. Times `replay(agent, candidate, since=7 days ago)` --runs times (the first with the
   compiled-policy cache cold), by the clock and by this process's CPU time, then over
   --slices slices of the window (per-row cost percentiles). Peak RSS is the process's
   maximum resident size after the runs.
4. The engine alone, same process, no database: the same rows' requests (built by the
   pipeline's `policy_request`, untimed, then frozen out of the garbage collector's
   passes) through `CompiledPolicy.decide` under the candidate, and under both sides as
   replay decides them (median of 3 rounds). Also the cost of only reading the rows into
   a list and of only building the requests.
5. Prints a summary and writes bench/results/replay-<date>-<HHMM>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = 20_000  # recorded decisions replayed per second
GRANTS, RULES = 20, 30


def _env() -> dict[str, str]:
    """Production settings (DEBUG off: no query log), quiet logs."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "oversight.settings",
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-replay-" + "x" * 40),
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }


def ensure_database() -> None:
    """Create the database named by DATABASE_OWNER_URL (or DATABASE_URL) if it is missing."""
    import psycopg

    url = os.environ.get("DATABASE_OWNER_URL") or os.environ["DATABASE_URL"]
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate() -> None:
    command = [sys.executable, "manage.py", "migrate", "--noinput"]
    if os.environ.get("DATABASE_OWNER_URL"):
        command += ["--database", "owner"]
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True)  # noqa: S603
    if done.returncode:
        sys.exit(f"migrate failed:\n{done.stderr}")


def _setup_django() -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import django

    django.setup()


def _policy(agent: Any, actor: Any, rng: random.Random) -> None:
    """20 grants and 30 rules drawn as bench/engine.py draws them; a drawn item the
    services refuse (an invalid combination) is drawn again."""
    from django.core.exceptions import ValidationError
    from engine import _action_pattern, _condition, _resource_pattern

    from oversight.policy.models import Grant, Rule
    from oversight.policy.services import policy_object_create

    made = 0
    while made < GRANTS:
        action = _action_pattern(rng, wildcard_share=0.0)
        grant = Grant(agent=agent, action=action, resource=_resource_pattern(rng, action))
        try:
            policy_object_create(actor=actor, obj=grant)
            made += 1
        except ValidationError:
            continue
    made = 0
    while made < RULES:
        effect = rng.choices(["forbid", "hold", "permit"], weights=[3, 4, 3])[0]
        action = _action_pattern(rng, wildcard_share=0.03)
        rule = Rule(
            agent=agent,
            name=f"rule {made + 1}",
            effect=effect,
            action=action,
            resource=_resource_pattern(rng, action),
            condition=_condition(rng, action)[0],
            approvals=rng.choice([1, 1, 2]) if effect == "hold" else 1,
        )
        try:
            policy_object_create(actor=actor, obj=rule)
            made += 1
        except ValidationError:
            continue


def setup_data(rows: int, seed: int) -> dict[str, Any]:
    """In a subprocess (--setup-only): the agent, its releases and the recorded actions."""
    _setup_django()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from engine import build_requests

    from oversight.accounts import roles
    from oversight.accounts.services import team_add_member, team_create, team_reviewer_add
    from oversight.agents.services import agent_create
    from oversight.audit.actors import Actor
    from oversight.gateway.models import Action
    from oversight.gateway.pipeline import ActionInput, Credentials, policy_request
    from oversight.policy.compiled import compiled_policy_for
    from oversight.policy.models import Rule
    from oversight.policy.services import policy_object_create
    from oversight.releases.models import Release
    from oversight.releases.services import release_rollback

    actor = Actor.system("bench")
    rng = random.Random(seed)  # noqa: S311  (synthetic data, reproducible)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    users = get_user_model().objects
    owner = users.create_user(username=f"owner-{stamp}", email="o@example.com", password=None)
    owner.groups.add(Group.objects.get_or_create(name=roles.OWNER)[0])
    team = team_create(actor=actor, name=f"replay {stamp}")
    team_add_member(actor=actor, team=team, user=owner)
    for number in (1, 2):  # hold rules asking for two approvals need two reviewers
        reviewer = users.create_user(username=f"rev{number}-{stamp}", password=None)
        team_reviewer_add(actor=actor, team=team, user=reviewer)
        team.refresh_from_db()
    agent = agent_create(
        actor=actor,
        name=f"Replay bench {stamp}",
        slug=f"replay-bench-{stamp}",
        purpose="Benchmark of replay.",
        owner=owner,
        team=team,
        environments=["staging", "production"],
        risk_tier="high",
    )
    _policy(agent, actor, rng)
    agent.refresh_from_db()
    base = agent.stable_version
    for rule in (
        Rule(
            agent=agent,
            name="no large money movements",
            effect="forbid",
            action="stripe.*",
            condition="has(params.amount) && params.amount > 1000",
        ),
        Rule(
            agent=agent,
            name="no large credits",
            effect="forbid",
            action="billing.credit.*",
            condition="params.amount > 1000",
        ),
        Rule(agent=agent, name="contact deletes", effect="hold", action="crm.contact.delete"),
    ):
        policy_object_create(actor=actor, obj=rule)
    agent.refresh_from_db()
    candidate = agent.stable_version
    # The candidate is not in force: stable goes back to the base's content (a new
    # release), which is what actions naming no release are compared under.
    release_rollback(actor=actor, release=Release.objects.get(agent=agent, version=base))
    agent.refresh_from_db()
    releases = dict(Release.objects.filter(agent=agent).values_list("version", "pk"))
    statuses = {"allow": "allowed", "deny": "denied", "hold": "pending"}
    credentials = {
        env: Credentials(agent=agent, environment=env, switch_id=None)
        for env in ("staging", "production")
    }
    now = dt.datetime.now(dt.UTC)
    batch: list[Action] = []
    for request in build_requests(rng, rows):
        version = rng.choices([base, base - 1, None], weights=[80, 15, 5])[0]
        at = now - dt.timedelta(seconds=rng.uniform(60, 6 * 86400))
        data = ActionInput(action=request.action, resource=request.resource, params=request.params)
        policy = compiled_policy_for(agent, releases.get(version, agent.stable_release_id))
        outcome = policy.decide(policy_request(credentials[request.env], data, at)).outcome
        batch.append(
            Action(
                agent=agent,
                environment=request.env,
                action=request.action,
                resource=request.resource,
                params=request.params,
                status=statuses[outcome],
                decision=statuses[outcome],
                release_version=version,
                request_hash="0" * 64,
                created_at=at,
            )
        )
    Action.objects.bulk_create(batch, batch_size=5000)
    # auto_now_add stamped them all now; spread them over the last 6 days again.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE gateway_action SET created_at = now() - random() * interval '6 days'"
            " - interval '1 minute' WHERE agent_id = %s",
            [agent.pk],
        )
    return {
        "slug": agent.slug,
        "candidate": candidate,
        "base": base,
        "stable": agent.stable_version,
    }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(slug: str, candidate: int, runs: int, slices: int) -> dict[str, Any]:
    _setup_django()
    from django.utils import timezone

    from oversight.agents.models import Agent
    from oversight.releases.models import Release
    from oversight.releases.replay import CHUNK_SIZE, replay

    agent = Agent.objects.select_related("team", "owner").get(slug=slug)
    release = Release.objects.get(agent=agent, version=candidate)
    until = timezone.now()
    since = until - dt.timedelta(days=7)
    rss_before = _rss_mib()
    result: dict[str, Any] = {"rss_before_mib": rss_before, "runs": []}
    report = None
    for number in range(runs):
        cpu = time.process_time()
        report = replay(agent=agent, release=release, since=since, until=until)
        cpu = time.process_time() - cpu
        result["runs"].append(
            {
                "run": number + 1,
                "cache": "cold" if number == 0 else "warm",
                "rows": report.total,
                "seconds": round(report.seconds, 4),
                "decisions_per_second": round(report.decisions_per_second),
                "per_row_us": round(report.seconds / report.total * 1e6, 2),
                # This process's CPU time alone: what the machine's other load does not
                # change (the database's share is in its own process).
                "cpu_seconds": round(cpu, 4),
                "decisions_per_cpu_second": round(report.total / cpu),
                "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            }
        )
        print(f"  run {number + 1}: {report.total} rows in {report.seconds:.3f} s,"
              f" {report.decisions_per_second:,.0f}/s")  # fmt: skip
    result["rss_after_runs_mib"] = _rss_mib()
    assert report is not None
    result["report"] = {
        key: getattr(report, key)
        for key in (
            "total",
            "changed",
            "unchanged",
            "transitions",
            "outcomes_before",
            "outcomes_after",
            "recorded_versions",
            "under_stable",
            "errors",
        )
    }
    rates = [run["decisions_per_second"] for run in result["runs"]]
    costs = [run["per_row_us"] for run in result["runs"]]
    result["median_decisions_per_second"] = statistics.median(rates)
    result["median_per_row_us"] = statistics.median(costs)
    result["median_decisions_per_cpu_second"] = statistics.median(
        run["decisions_per_cpu_second"] for run in result["runs"]
    )
    # Per-row cost over slices of the window (each slice a whole replay: its queries too).
    step = (until - since) / slices
    slice_costs = []
    for index in range(slices):
        part = replay(
            agent=agent,
            release=release,
            since=since + step * index,
            until=since + step * (index + 1),
        )
        if part.total:
            slice_costs.append(part.seconds / part.total * 1e6)
    result["slices"] = {
        "count": slices,
        "rows_each_about": report.total // slices,
        "per_row_us_p50": round(_percentile(slice_costs, 0.5), 2),
        "per_row_us_p90": round(_percentile(slice_costs, 0.9), 2),
        "per_row_us_p99": round(_percentile(slice_costs, 0.99), 2),
    }
    result["engine"] = engine_alone(agent, release, since, until, CHUNK_SIZE)
    return result


def engine_alone(agent: Any, release: Any, since: Any, until: Any, chunk: int) -> dict[str, Any]:
    """The same rows' requests through the engine alone, and the cost of reading the rows
    and of building the requests, each timed on its own."""
    from oversight.gateway.pipeline import ActionInput, Credentials, policy_request
    from oversight.policy.compiled import compiled_policy_for
    from oversight.releases.models import Release
    from oversight.releases.replay import recorded_rows

    rows_qs = recorded_rows(agent=agent, since=since, until=until)
    started = time.perf_counter()
    rows = list(rows_qs.iterator(chunk))
    read_s = time.perf_counter() - started
    credentials = {
        env: Credentials(agent=agent, environment=env, switch_id=None)
        for env in ("staging", "production")
    }
    started = time.perf_counter()
    requests = [
        policy_request(
            credentials[env],
            ActionInput(action=name, resource=res, params=params),
            at,
        )
        for _pk, env, name, res, params, at, _v in rows
    ]
    build_s = time.perf_counter() - started
    versions = dict(Release.objects.filter(agent=agent).values_list("version", "pk"))
    candidate = compiled_policy_for(agent, release.pk)
    baselines = [
        compiled_policy_for(agent, versions.get(row[6], agent.stable_release_id)) for row in rows
    ]
    # 100,000 rows and requests held at once (replay streams them) would make the
    # collector's full passes part of the engine's figure: freeze them out of it.
    gc.collect()
    gc.freeze()
    timings: dict[str, list[float]] = {"candidate": [], "both": []}
    for _round in range(3):
        started = time.perf_counter()
        for request in requests:
            candidate.decide(request)
        timings["candidate"].append(time.perf_counter() - started)
        started = time.perf_counter()
        for request, baseline in zip(requests, baselines, strict=True):
            candidate.decide(request)
            baseline.decide(request)
        timings["both"].append(time.perf_counter() - started)
    gc.unfreeze()
    count = len(requests)
    candidate_s = statistics.median(timings["candidate"])
    both_s = statistics.median(timings["both"])
    return {
        "rows": count,
        "read_rows_s": round(read_s, 4),
        "read_rows_us_per_row": round(read_s / count * 1e6, 2),
        "build_requests_s": round(build_s, 4),
        "build_request_us_per_row": round(build_s / count * 1e6, 2),
        "decide_candidate_s": round(candidate_s, 4),
        "decide_candidate_per_second": round(count / candidate_s),
        "decide_candidate_us": round(candidate_s / count * 1e6, 2),
        "decide_both_sides_s": round(both_s, 4),
        "decide_both_sides_rows_per_second": round(count / both_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slices", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_only:
        print(json.dumps(setup_data(args.rows, args.seed)))
        return
    if "DATABASE_URL" not in os.environ:
        sys.exit("Set DATABASE_URL (and DATABASE_OWNER_URL) to a PostgreSQL database.")
    sys.path[:0] = [str(ROOT / "bench")]
    from decide import report_head

    os.environ.update(_env())  # this process measures with the same settings
    head = report_head("replay")
    print("migrating and recording", args.rows, "actions ...")
    ensure_database()
    migrate()
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            __file__,
            "--setup-only",
            "--rows",
            str(args.rows),
            "--seed",
            str(args.seed),
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"setup failed:\n{done.stderr}")
    setup = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"set up in {time.perf_counter() - started:.1f} s: {setup}")
    result = measure(setup["slug"], setup["candidate"], args.runs, args.slices)
    report = {**head, "setup": setup, "target_per_second": TARGET, **result}
    report["target_met"] = result["median_decisions_per_second"] >= TARGET
    report["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    engine = result["engine"]
    print(
        f"\nreplay: median {result['median_decisions_per_second']:,}/s"
        f" ({result['median_per_row_us']} µs a row; by CPU time"
        f" {result['median_decisions_per_cpu_second']:,}/s; slices p50"
        f" {result['slices']['per_row_us_p50']} µs, p99 {result['slices']['per_row_us_p99']} µs);"
        f" peak RSS {result['rss_after_runs_mib']} MiB (before: {result['rss_before_mib']} MiB)"
        f"\nengine alone: {engine['decide_candidate_per_second']:,} decisions/s under the"
        f" candidate; both sides {engine['decide_both_sides_rows_per_second']:,} rows/s;"
        f" reading rows {engine['read_rows_us_per_row']} µs a row, building requests"
        f" {engine['build_request_us_per_row']} µs a row"
        f"\ntarget {TARGET:,}/s: {'met' if report['target_met'] else 'NOT met'}"
    )
    out = ROOT / "bench" / "results" / f"replay-{dt.datetime.now(dt.UTC):%Y-%m-%d-%H%M}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("wrote", out.relative_to(ROOT))


if __name__ == "__main__":
    main()
