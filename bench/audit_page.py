#!/usr/bin/env python
"""Audit log at scale: keyset pages vs OFFSET pages, filters, and a streaming export.

Usage (needs a PostgreSQL server; the database named in DATABASE_URL is dropped and made anew):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/oversight_bench \
        .venv/bin/python bench/audit_page.py --rows 2000000

It fills the audit table with synthetic rows (hashes are not computed: this measures reads),
then times the audit page's queries as an admin and as an auditor who sees 5 of 200 agents.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oversight.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)


def _recreate_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _fill(rows: int, agents: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audit_auditevent (seq, created_at, actor_type, actor_user_id,
                actor_agent_id, actor_label, verb, target_type, target_id, target_label,
                agent_id, request_id, before, after, prev_hash, hash)
            SELECT g, now() - make_interval(secs => %s - g), 'agent', NULL, (g %% %s) + 1,
                'agent:bot-' || ((g %% %s) + 1), (ARRAY['action.allowed','action.denied',
                'action.held','agent.updated'])[(g %% 4) + 1], 'agents.agent',
                ((g %% %s) + 1)::text, 'Bot ' || ((g %% %s) + 1), (g %% %s) + 1, md5(g::text),
                jsonb_build_object('n', g), jsonb_build_object('n', g + 1, 'amount', g %% 1000),
                md5((g - 1)::text) || md5((g - 1)::text), md5(g::text) || md5(g::text)
            FROM generate_series(1, %s) AS g
            """,
            [rows, agents, agents, agents, agents, agents, rows],
        )
        cursor.execute("ANALYZE audit_auditevent")


def _timed(fn, runs: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    fn()  # warm
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--export-rows", type=int, default=200_000)
    args = parser.parse_args()

    _recreate_database()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _fill(args.rows, args.agents)
    print(f"filled {args.rows:,} rows in {time.perf_counter() - started:.1f}s")

    from oversight.accounts import roles
    from oversight.accounts.models import Team
    from oversight.agents.models import Agent
    from oversight.agents.services import agent_access_grant
    from oversight.audit.actors import Actor
    from oversight.audit.export import csv_lines
    from oversight.audit.models import AuditEvent
    from oversight.audit.selectors import PAGE_SIZE, AuditFilters, audit_events, audit_page

    user_model = get_user_model()
    admin = user_model.objects.create_user("bench-admin", is_superuser=True)
    auditor = user_model.objects.create_user("bench-auditor")
    auditor.groups.add(Group.objects.create(name=roles.AUDITOR))
    owner = user_model.objects.create_user("bench-owner")
    team = Team.objects.create(name="bench", slug="bench", group=Group.objects.create(name="t"))
    # Agents with the ids the synthetic rows point at (1..agents), created without audit rows.
    Agent.objects.bulk_create(
        Agent(
            id=i,
            name=f"Bot {i}",
            slug=f"bot-{i}",
            purpose="bench",
            owner=owner,
            team=team,
            next_review_due="2030-01-01",
        )
        for i in range(1, args.agents + 1)
    )
    from django.db import transaction

    for agent in Agent.objects.filter(id__in=[3, 50, 97, 150, 199]):
        with transaction.atomic():
            agent_access_grant(
                actor=Actor.system("bench"), agent=agent, user=auditor, level="viewer"
            )

    deep = args.rows // 2
    offset_qs = AuditEvent.objects.order_by("-seq")
    cases = {
        "admin, first page (keyset)": lambda: audit_page(
            user=admin, filters=AuditFilters(), before=None
        ),
        f"admin, page at seq {deep:,} (keyset)": lambda: audit_page(
            user=admin, filters=AuditFilters(), before=deep
        ),
        f"admin, same depth by OFFSET {args.rows - deep:,} (baseline)": lambda: list(
            offset_qs[args.rows - deep : args.rows - deep + PAGE_SIZE + 1]
        ),
        "admin, filter agent=bot-77, deep page": lambda: audit_page(
            user=admin, filters=AuditFilters(agent="bot-77"), before=deep
        ),
        "admin, filter verb=action.denied, deep page": lambda: audit_page(
            user=admin, filters=AuditFilters(verb="action.denied"), before=deep
        ),
        "admin, filter actor=agent:bot-12, deep page": lambda: audit_page(
            user=admin, filters=AuditFilters(actor="agent:bot-12"), before=deep
        ),
        "auditor (5 of 200 agents), first page": lambda: audit_page(
            user=auditor, filters=AuditFilters(), before=None
        ),
        "auditor (5 of 200 agents), deep page": lambda: audit_page(
            user=auditor, filters=AuditFilters(), before=deep
        ),
    }
    print(f"\n{'query':<58} {'p50 ms':>8} {'p99 ms':>8}")
    for name, fn in cases.items():
        result = _timed(fn, args.runs)
        print(f"{name:<58} {result['p50']:>8.2f} {result['p99']:>8.2f}")

    async def export() -> int:
        size = 0
        events = audit_events(user=admin, filters=AuditFilters()).filter(
            seq__gt=args.rows - args.export_rows
        )
        async for chunk in csv_lines(events):
            size += len(chunk)
        return size

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    size = asyncio.run(export())
    elapsed = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"\nCSV export of {args.export_rows:,} rows: {elapsed:.2f}s, "
        f"{args.export_rows / elapsed:,.0f} rows/s, {size / 1e6:.1f} MB, "
        f"peak RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
