#!/usr/bin/env python
"""The approval queue with many held actions and the registry with many agents: server
time and queries per page, as the lists grow.

Usage (needs a PostgreSQL server; the database named in DATABASE_URL is dropped and made
anew, so give it a name of its own):

    DATABASE_URL=postgres://oversight_owner@127.0.0.1:55500/oversight_bench_lists \
        .venv/bin/python bench/list_pages.py

    # the same against another checkout's code (a baseline), same database and data:
    ... .venv/bin/python bench/list_pages.py --code /path/to/other/checkout

Each page is requested through Django's own handler in this process (the test client:
middleware, view, queries, template), 100 timed requests per row after a warm-up, so
"server time" is what the web process spends, without the network and uvicorn. The queue
is measured as an admin and as a reviewer who may decide the 20 agents with held actions;
20,000 older actions give each agent a history (the cards show an agent's recent
actions). The registry is measured as an admin.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _setup_path(code: str | None) -> None:
    root = Path(code).resolve() if code else HERE.parent
    sys.path.insert(0, str(root))
    os.chdir(root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oversight.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.pop("REDIS_URL", None)  # in-memory layer and cache: this measures pages


def _recreate_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _timed(get: Any, runs: int) -> dict[str, float]:
    get()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = get()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 2),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "mean_ms": round(statistics.fmean(times), 2),
    }


def _queries(get: Any) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        get()
    return len(captured)


def _world(agents: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from oversight.accounts import roles
    from oversight.accounts.models import Team
    from oversight.agents.models import Agent
    from oversight.agents.services import agent_access_grant
    from oversight.audit.actors import Actor

    users = get_user_model()
    admin = users.objects.create_user("bench-admin")
    admin.groups.add(Group.objects.get_or_create(name=roles.ADMIN)[0])
    reviewer = users.objects.create_user("bench-reviewer")
    reviewer.groups.add(Group.objects.get_or_create(name=roles.REVIEWER)[0])
    owner = users.objects.create_user("bench-owner")
    teams = [
        Team.objects.create(
            name=f"team {t}", slug=f"team-{t}", group=Group.objects.create(name=f"t{t}")
        )
        for t in range(4)
    ]
    due = dt.date.today() + dt.timedelta(days=90)
    held_by = Agent.objects.bulk_create(
        Agent(
            name=f"Held bot {i:02d}",
            slug=f"held-bot-{i:02d}",
            purpose="Synthetic.",
            owner=owner,
            team=teams[i % 4],
            risk_tier=("low", "medium", "high", "critical")[i % 4],
            next_review_due=due,
        )
        for i in range(agents)
    )
    system = Actor.system("bench")
    for agent in held_by:
        agent_access_grant(actor=system, agent=agent, user=reviewer, level="reviewer")
    return {"admin": admin, "reviewer": reviewer, "owner": owner, "teams": teams, "agents": held_by}


def _actions(agents: list[Any], n: int, *, start: int, status: str) -> None:
    from django.utils import timezone

    from oversight.gateway.models import Action

    now = timezone.now()
    rows = []
    for i in range(start, start + n):
        agent = agents[i % len(agents)]
        pending = status == "pending"
        rows.append(
            Action(
                agent=agent,
                environment="production",
                action="payments.refund",
                resource=f"stripe:charge/ch_{i}",
                params={"amount": 900 + i % 100, "ticket": f"T-{i}"},
                reason="Customer asked for a refund." if pending else "",
                status=status,
                decision=status,
                reasons=[{"kind": "rule", "name": "big refunds", "effect": "hold", "detail": "x"}],
                approvals_required=1 if pending else 0,
                expires_at=now + dt.timedelta(seconds=900 + i) if pending else None,
                request_hash=hashlib.sha256(f"{status}{i}".encode()).hexdigest(),
            )
        )
    Action.objects.bulk_create(rows, batch_size=2000)


def _more_agents(world: dict[str, Any], total: int) -> None:
    from oversight.agents.models import Agent

    have = Agent.objects.count()
    due = dt.date.today() + dt.timedelta(days=90)
    Agent.objects.bulk_create(
        (
            Agent(
                name=f"Registry bot {i:05d}",
                slug=f"registry-bot-{i:05d}",
                purpose="Synthetic.",
                owner=world["owner"],
                team=world["teams"][i % 4],
                risk_tier=("low", "medium", "high", "critical")[i % 4],
                next_review_due=due,
            )
            for i in range(have, total)
        ),
        batch_size=2000,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", help="import the project from this checkout (a baseline)")
    parser.add_argument("--queue", default="10,100,1000", help="held actions, growing")
    parser.add_argument("--registry", default="100,1000,10000", help="agents, growing")
    parser.add_argument("--history", type=int, default=20_000, help="older actions")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument(
        "--no-freeze", dest="freeze", action="store_false", help="skip the server's gc.freeze"
    )
    args = parser.parse_args()
    output = Path(args.json).resolve() if args.json else None

    _setup_path(args.code)
    _recreate_database()
    import django

    django.setup()
    from django.conf import settings

    # Static URLs without a collectstatic manifest (as in the tests); the pages are the same.
    settings.STORAGES["staticfiles"] = {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
    }
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from oversight.agents.models import Agent

    call_command("migrate", verbosity=0)
    world = _world(20)
    _actions(world["agents"], args.history, start=0, status="succeeded")
    results: dict[str, Any] = {"code": args.code or "this checkout", "queue": [], "registry": []}

    clients = {}
    for who in ("admin", "reviewer"):
        clients[who] = Client()
        clients[who].force_login(world[who])
    if args.freeze:
        # As the web server does at start-up (oversight/live/lifespan.py).
        from oversight.live.lifespan import freeze_startup_objects

        freeze_startup_objects()

    held = 0
    for size in (int(s) for s in args.queue.split(",")):
        _actions(world["agents"], size - held, start=10_000_000 + held, status="pending")
        held = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE gateway_action")
        for who, view in (("admin", "cards"), ("reviewer", "cards"), ("reviewer", "list")):
            path = f"/approvals/?view={view}"
            get = lambda c=clients[who], p=path: c.get(p, secure=True)  # noqa: E731
            row = {"held": size, "who": who, "view": view, "queries": _queries(get)}
            row.update(_timed(get, args.runs))
            row["bytes"] = len(get().content)
            results["queue"].append(row)
            print("queue", json.dumps(row), flush=True)

    admin = clients["admin"]
    for size in (int(s) for s in args.registry.split(",")):
        _more_agents(world, size)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE agents_agent")
        get = lambda: admin.get("/agents/", secure=True)  # noqa: E731
        row = {"agents": Agent.objects.count(), "queries": _queries(get), **_timed(get, args.runs)}
        row["bytes"] = len(get().content)
        results["registry"].append(row)
        print("registry", json.dumps(row), flush=True)

    if output:
        output.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
