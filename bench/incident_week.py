#!/usr/bin/env python
"""Incident analysis with a week of demo traffic in the database: how long from opening an
incident to its report, for one agent, a team and everything; its page and its API.

Usage (a PostgreSQL server it may drop, create and migrate the database on; loopback only):

    DATABASE_URL=postgres://oversight_runtime@127.0.0.1:55500/oversight_week \\
    DATABASE_OWNER_URL=postgres://oversight_owner@127.0.0.1:55500/oversight_week \\
        .venv/bin/python bench/incident_week.py        # 7 days at 1 action/s, 5 runs

What it does:

1. Drops and creates the database (as its owner), migrates it, runs `seed_demo` (the
   demo's users, teams, agents and policies) and makes a production token for each agent
   the simulator drives (refund-bot, crm-updater, deploy-bot, email-campaigner).
2. **A week of traffic** for those agents, --rate actions/s in all (shared as
   `manage.py simulate` shares it) with a daily cycle (x0.4 at 02:00 UTC to x1.6 at
   14:00), Poisson arrivals, sessions of 5: the intents of `oversight/core/demo_traffic.py`
   MOVES, each decided by the pipeline's own `evaluate` (the agent's compiled release,
   its standing holds and its limits, counted per window in this process), built as the
   pipeline builds the row and its `action.decided` audit event. Then what happens after
   a decision, as the simulator and reviewers make it: allowed actions run and are
   reported (5 % fail); held ones get a reviewer's vote (70 % approved, then run; 10 %
   rejected) or expire (20 %); each step with its `ApprovalVote` rows and audit events.
   Steps due after the fill's end stay undone: the newest actions are still allowed or
   pending, as in a live system. This is fixture data, so it is written in bulk, an hour
   at a time: actions and votes with COPY (their `created_at` the simulated time), later
   states with `bulk_update`, audit events through the log's own append function
   (`audit_append`: the database chains and hashes each one), oldest first. Not written:
   limit counter rows, idempotency keys, live broadcasts, notifications. The per-minute
   rollups and resource families of the week are made by `monitoring_backfill`.
3. **A live tail** of --tail-minutes: the traffic is topped up to the clock every few
   seconds while changes are made through the services (stamped now, so inside the
   analysed window): a refund-bot token created and revoked, crm-updater's purpose
   reworded, a grant deploy-bot never uses, email-campaigner's per-minute limit raised,
   and, two minutes in, refund-bot's rule "big refunds need a human" deleted (from then
   on the pipeline allows big refunds: the fault). Then the monitoring job
   (`monitoring_run`) once, as the beat runs it, and ANALYZE (as the tables' owner), as
   autovacuum would after such a load.
4. **Incidents**, opened through `incident_open` by the demo admin (by hand): refund-bot,
   its team (payments) and everything. Celery is eager (no Redis), so the analysis runs in
   the opening's commit, as an idle worker would start it at once: the time of
   `incident_open` is the time from opening to the report. Then `incident_analyse` --runs
   times each (median), the page `/incidents/<pk>/` through Django's test client as the
   logged-in admin, and `GET /api/v1/incidents/{id}` with the admin's personal token. One
   more analysis per scope with its queries captured: their count, the SQL time, the
   slowest, and EXPLAIN ANALYZE of the slowest SELECT.
5. **Baselines**, same run: `SELECT count(*)` over the week's actions, the count of the
   rows the global analysis reads (its window), and `GET /ping` through the same client.
6. Prints a summary and writes bench/results/incident-week-<date>-<HHMM>.json. Steps 1
   to 6 but the migration run in a child process; once it has exited (and its
   connections with it), the database is dropped, unless --keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import io
import itertools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 60.0  # the incident page complete within a minute of opening (issue 17)
AMPLITUDE = 0.6  # the daily cycle: the rate times 1 + AMPLITUDE * sin(...)
PEAK_HOUR = 14  # UTC
HOUR = dt.timedelta(hours=1)
TOP_UP_SECONDS = 5.0
# What happens to an action after its decision; allowed ones fail as often as the
# simulator's (FAILURE_RATE).
APPROVED, REJECTED = 0.70, 0.10  # of held actions; the rest expire
VOTE_SECONDS = (30.0, 600.0)
RUN_SECONDS = (0.02, 0.2)


def _env() -> dict[str, str]:
    """Production settings (DEBUG off), no Redis (Celery eager), quiet logs."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "oversight.settings",
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-incident-week-" + "x" * 40),
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "PERIODIC_IN_SERVER": "0",
    }


# Read before Django's setup, which takes the owner's URL out of the environment.
OWNER_URL = os.environ.get("DATABASE_OWNER_URL") or os.environ.get("DATABASE_URL", "")


def _admin_sql(statement: str, database: str = "postgres") -> None:
    import psycopg

    base = OWNER_URL.rpartition("/")[0]
    with psycopg.connect(f"{base}/{database}", autocommit=True) as conn:
        conn.execute(statement)


def analyze_tables() -> None:
    """As the tables' owner, what autovacuum does after a load: fresh planner statistics."""
    _admin_sql("ANALYZE", OWNER_URL.rpartition("/")[2])


def fresh_database() -> None:
    name = OWNER_URL.rpartition("/")[2]
    _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_sql(f'CREATE DATABASE "{name}"')
    command = [sys.executable, "manage.py", "migrate", "--noinput"]
    if os.environ.get("DATABASE_OWNER_URL"):
        command += ["--database", "owner"]
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True)  # noqa: S603
    if done.returncode:
        sys.exit(f"migrate failed:\n{done.stderr}")


def drop_database() -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{OWNER_URL.rpartition("/")[2]}" WITH (FORCE)')


def _setup_django() -> None:
    os.environ.update({k: v for k, v in _env().items() if k != "DATABASE_OWNER_URL"})
    os.environ.pop("DATABASE_OWNER_URL", None)
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import django

    django.setup()
    # ServeStatic warns that there is no collectstatic output: the pages do not need it.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    from django.conf import settings

    # Static URLs without a collectstatic manifest (as in the tests); the pages are the same.
    settings.STORAGES["staticfiles"] = {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
    }


def _cpu_seconds() -> float:
    return time.process_time()


# -- the traffic ---------------------------------------------------------------------------


def daily_factor(at: dt.datetime) -> float:
    hours = at.hour + at.minute / 60
    return 1 + AMPLITUDE * math.sin(2 * math.pi * (hours - PEAK_HOUR + 6) / 24)


@dataclass(order=True)
class _Step:
    at: dt.datetime
    order: int
    kind: str = field(compare=False)  # run, vote, expire
    action: Any = field(compare=False)
    detail: dict[str, Any] = field(compare=False, default_factory=dict)


@dataclass
class _Stream:
    """One agent's arrivals (Poisson, thinned by the daily cycle) and intents."""

    slug: str
    rate: float
    next_at: float  # epoch seconds of the next candidate arrival
    intents: Iterator[Any]
    session: str = ""
    started: int = 0


@dataclass
class Fill:
    """What one fill wrote."""

    actions: int = 0
    updated: int = 0
    votes: int = 0
    events: int = 0

    def add(self, other: Fill) -> None:
        for name in ("actions", "updated", "votes", "events"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Traffic:
    """The demo agents' traffic, written up to a given time on each ``fill``."""

    def __init__(self, *, rate: float, start: dt.datetime, seed: int) -> None:
        from django.contrib.auth import get_user_model

        from oversight.agents.models import Agent
        from oversight.agents.services import token_create
        from oversight.audit.actors import Actor
        from oversight.core import demo
        from oversight.core.demo_traffic import intents, moves_for
        from oversight.gateway.management.commands.simulate import (
            FAILURE_RATE,
            SESSION_LENGTH,
            SHARES,
        )

        self.failure_rate = FAILURE_RATE
        self.rng = random.Random(seed)  # noqa: S311 (synthetic data, reproducible)
        self.session_length = SESSION_LENGTH
        self.cursor = start
        self.counter = itertools.count()
        self.later: list[_Step] = []
        self.windows: dict[tuple[int, dt.datetime], tuple[int, Decimal]] = {}
        users = {u.username: u for u in get_user_model().objects.all()}
        reviewers: dict[str, list[str]] = {}
        for team, username in demo.TEAM_REVIEWERS:
            reviewers.setdefault(team, []).append(username)
        self.tokens, self.streams, self.voters = {}, [], {}
        total = sum(SHARES.values())
        for slug, share in SHARES.items():
            agent = Agent.objects.select_related("team", "owner").get(slug=slug)
            token, _raw = token_create(
                actor=Actor.system("bench"), agent=agent, environment="production", name="week"
            )
            self.tokens[slug] = token
            self.voters[slug] = [users[name] for name in reviewers[agent.team.slug]]
            mean = rate * share / total
            first = start.timestamp() + self.rng.expovariate(mean * (1 + AMPLITUDE))
            self.streams.append(_Stream(slug, mean, first, intents(self.rng, moves_for(slug))))
        self.refresh()

    def refresh(self) -> None:
        """The agents as they are now: a policy edit, a hold or a pause shows from here on."""
        from oversight.agents.models import Agent
        from oversight.gateway.pipeline import Credentials

        agents = Agent.objects.select_related("team", "owner").in_bulk(
            [t.agent_id for t in self.tokens.values()]
        )
        self.credentials = {}
        for slug, token in self.tokens.items():
            token.agent = agents[token.agent_id]
            self.credentials[slug] = Credentials(
                agent=token.agent, environment="production", switch_id=None, token=token
            )

    def _arrivals(self, until: dt.datetime) -> list[tuple[float, _Stream]]:
        found = []
        end = until.timestamp()
        for stream in self.streams:
            peak = stream.rate * (1 + AMPLITUDE)
            while stream.next_at < end:
                at = stream.next_at
                stream.next_at += self.rng.expovariate(peak)
                moment = dt.datetime.fromtimestamp(at, tz=dt.UTC)
                if self.rng.random() < daily_factor(moment) / (1 + AMPLITUDE):
                    found.append((at, stream))
        found.sort(key=lambda pair: pair[0])
        return found

    def _limits(self, outcome: Any, at: dt.datetime) -> Any:
        """The limits' counters as PostgreSQL's ``limits_charge`` keeps them (fixed
        windows, all or none), here in memory; nothing is written to the counter table."""
        from oversight.gateway.pipeline import over_limit
        from oversight.policy.limits import Exceeded, describe, window_start

        if not outcome.charges:
            return outcome
        keys, exceeded = [], []
        for limit, amount in outcome.charges:
            key = (limit.pk, window_start(at, limit.window_seconds))
            count, total = self.windows.get(key, (0, Decimal(0)))
            if (limit.max_count is not None and count + 1 > limit.max_count) or (
                limit.max_sum is not None and total + amount > limit.max_sum
            ):
                exceeded.append(Exceeded(limit, describe(limit)))
            keys.append((key, count + 1, total + amount))
        if exceeded:
            return over_limit(outcome, exceeded)
        for key, count, total in keys:
            self.windows[key] = (count, total)
        return outcome

    def _decide(self, stream: _Stream, at: dt.datetime) -> tuple[Any, dict[str, Any]] | None:
        from oversight.gateway.auth import AgentUnavailableError
        from oversight.gateway.pipeline import ActionInput, _audit_args, _new_action, evaluate

        if stream.started % self.session_length == 0:
            stream.session = f"{stream.slug}-{self.rng.getrandbits(48):012x}"
        stream.started += 1
        intent = next(stream.intents)
        data = ActionInput(
            action=intent.action,
            resource=intent.resource,
            params=intent.params,
            reason=intent.reason,
            before=intent.before,
            session_id=stream.session,
        )
        credentials = self.credentials[stream.slug]
        try:
            outcome = self._limits(evaluate(credentials, data, at), at)
        except AgentUnavailableError:  # paused or retired: it asks nothing
            return None
        token = self.tokens[stream.slug]
        action = _new_action(token, data, outcome, at)
        action.created_at = at
        self._plan(action, intent, stream.slug, at)
        return action, _audit_args(token, data, action)

    def _plan(self, action: Any, intent: Any, slug: str, at: dt.datetime) -> None:
        """What happens to it next, and when."""
        rng = self.rng
        if action.status == "allowed":
            self._later(at + dt.timedelta(seconds=rng.uniform(*RUN_SECONDS)), "run", action, intent)
        elif action.status == "pending":
            roll = rng.random()
            vote = "approve" if roll < APPROVED else "deny"
            voters = self.voters[slug]
            if action.separation_of_duties:
                voters = [v for v in voters if v.pk != action.agent.owner_id]
            count = max(action.approvals_required, 1) if vote == "approve" else 1
            if roll >= APPROVED + REJECTED or action.expires_at is None or len(voters) < count:
                self._later(action.expires_at or at, "expire", action)
                return
            hold = (action.expires_at - at).total_seconds()
            delay = rng.uniform(VOTE_SECONDS[0], min(VOTE_SECONDS[1], 0.9 * hold))
            for number, voter in enumerate(voters[:count], start=1):
                when = at + dt.timedelta(seconds=delay + (number - 1) * rng.uniform(10, 60))
                detail = {"voter": voter, "vote": vote, "number": number, "of": count}
                self._later(when, "vote", action, intent, **detail)

    def _later(self, at: dt.datetime, kind: str, action: Any, intent: Any = None, **more: Any):
        step = _Step(at, next(self.counter), kind, action, {"intent": intent, **more})
        heapq.heappush(self.later, step)

    def _apply(self, step: _Step) -> tuple[list[dict[str, Any]], Any]:
        """A step's change to its action: its audit events and any vote row."""
        from oversight.approvals.models import ApprovalVote
        from oversight.audit import verbs
        from oversight.audit.actors import Actor
        from oversight.audit.services import audit_row

        action, at, detail = step.action, step.at, step.detail
        target = ("gateway.action", str(action.pk), f"{action.action} on {action.resource}"[:200])
        events, vote_row = [], None
        if step.kind == "run":
            failed = self.rng.random() < self.failure_rate
            before_status = action.status
            action.status = "failed" if failed else "succeeded"
            action.finished_at = at
            action.error = "the downstream API answered 502" if failed else ""
            action.after = None if failed else detail["intent"].after
            events.append(
                audit_row(
                    actor=Actor.for_agent(action.agent),
                    verb=verbs.ACTION_REPORTED,
                    target=target,
                    agent_id=action.agent_id,
                    before={"status": before_status, "state": action.before},
                    after={"status": action.status, "state": action.after, "error": action.error},
                )
            )
        elif step.kind == "expire":
            action.status = "expired"
            events.append(
                audit_row(
                    actor=Actor.system("expiry"),
                    verb=verbs.ACTION_EXPIRED,
                    target=target,
                    agent_id=action.agent_id,
                    before={"status": "pending"},
                    after={"status": "expired"},
                )
            )
        else:
            voter, vote, number = detail["voter"], detail["vote"], detail["number"]
            vote_row = ApprovalVote(action=action, voter=voter, vote=vote, created_at=at)
            before = {"status": action.status, "approvals": number - 1}
            if vote == "deny":
                action.status, action.finished_at = "rejected", at
            elif number >= detail["of"]:
                action.status = "approved"
                run_at = at + dt.timedelta(seconds=self.rng.uniform(*RUN_SECONDS))
                self._later(run_at, "run", action, detail["intent"])
            events.append(
                audit_row(
                    actor=Actor.for_user(voter),
                    verb=verbs.ACTION_VOTED,
                    target=target,
                    agent_id=action.agent_id,
                    before=before,
                    after={
                        "status": action.status,
                        "approvals": number if vote == "approve" else number - 1,
                        "vote": vote,
                        "comment": "",
                    },
                )
            )
        for event in events:
            event["created_at"] = at
        return events, vote_row

    def fill(self, until: dt.datetime) -> Fill:
        """Write the traffic from where the last fill ended up to ``until``, an hour at a
        time; then the steps now due of actions written before."""
        done = Fill()
        while self.cursor < until:
            end = min(self.cursor + HOUR, until)
            self._fill_span(end, done)
            self.cursor = end
        return done

    def _fill_span(self, end: dt.datetime, done: Fill) -> None:
        from django.db import transaction

        from oversight.approvals.models import ApprovalVote
        from oversight.audit.services import audit_row
        from oversight.gateway.models import Action

        new: list[Any] = []
        events: list[dict[str, Any]] = []
        for at, stream in self._arrivals(end):
            made = self._decide(stream, dt.datetime.fromtimestamp(at, tz=dt.UTC))
            if made is None:
                continue
            action, audit = made
            row = audit_row(**audit)
            row["created_at"] = action.created_at
            new.append(action)
            events.append(row)
        fresh = {action.pk for action in new}
        changed: dict[Any, Any] = {}
        votes = []
        while self.later and self.later[0].at < end:
            step = heapq.heappop(self.later)
            step_events, vote = self._apply(step)
            events += step_events
            if vote is not None:
                votes.append(vote)
            if step.action.pk not in fresh:
                changed[step.action.pk] = step.action
        events.sort(key=lambda e: e["created_at"])
        with transaction.atomic():
            _copy_rows(Action, new)
            Action.objects.bulk_update(
                list(changed.values()),
                ["status", "finished_at", "error", "after"],
                batch_size=1000,
            )
            _copy_rows(ApprovalVote, votes)
            _append_events(events)
        done.actions += len(new)
        done.updated += len(changed)
        done.votes += len(votes)
        done.events += len(events)


def _copy_rows(model: Any, objs: list[Any]) -> None:
    """Fixture rows with COPY, each column as Django would save it (``get_db_prep_save``)
    but without ``pre_save``: ``created_at`` stays the simulated time it was given. An
    auto-numbered primary key is left to the database."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.models.fields import AutoFieldMixin

    connection = connections[DEFAULT_DB_ALIAS]  # the object itself: no proxy per column

    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, AutoFieldMixin)]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objs:
            copy.write_row(
                [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
            )


def _append_events(rows: list[dict[str, Any]]) -> None:
    """Audit events through the log's own append function (it takes the append lock,
    reads the chain's head and hashes each row in the database), in the caller's
    transaction: one prepared statement, its calls pipelined (psycopg's executemany)."""
    import psycopg
    from django.db import connection

    from oversight.audit.services import audit_append_call

    if not rows:
        return
    calls = [audit_append_call(row) for row in rows]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.executemany(calls[0][0], [params for _sql, params in calls])


# -- the changes (through the services, stamped now) ---------------------------------------


def _changes() -> list[tuple[float, str, Callable[[], None]]]:
    """(seconds into the tail, what, the change). The last is the fault."""
    from django.contrib.auth import get_user_model

    from oversight.agents.models import Agent
    from oversight.agents.services import agent_update, token_create, token_revoke
    from oversight.audit.actors import Actor
    from oversight.policy.models import Grant, Limit, Rule
    from oversight.policy.services import (
        policy_object_create,
        policy_object_delete,
        policy_object_update,
    )

    users = {u.username: u for u in get_user_model().objects.all()}

    def by(name: str) -> Actor:
        return Actor.for_user(users[name])

    def agent(slug: str) -> Agent:
        return Agent.objects.select_related("team", "owner").get(slug=slug)

    def token_churn() -> None:
        token, _ = token_create(
            actor=by("alice"), agent=agent("refund-bot"), environment="production", name="spare"
        )
        token_revoke(actor=by("alice"), token=token)

    def purpose() -> None:
        crm = agent("crm-updater")
        agent_update(actor=by("bob"), agent=crm, purpose=crm.purpose.rstrip(".") + ", daily.")

    def unused_grant() -> None:
        grant = Grant(agent=agent("deploy-bot"), action="deploy.rollback", resource="k8s:service/*")
        policy_object_create(actor=by("pat"), obj=grant)

    def email_limit() -> None:
        limit = Limit.objects.get(agent__slug="email-campaigner", name="emails per minute")
        policy_object_update(actor=by("gina"), obj=limit, max_count=40)

    def fault() -> None:
        rule = Rule.objects.get(agent__slug="refund-bot", name="big refunds need a human")
        policy_object_delete(actor=by("alice"), obj=rule)

    return [
        (0, "refund-bot: a token created and revoked", token_churn),
        (5, "crm-updater: purpose reworded", purpose),
        (60, "deploy-bot: a grant for deploy.rollback (never asked for)", unused_grant),
        (65, "email-campaigner: per-minute limit 30 -> 40", email_limit),
        (120, "refund-bot: rule 'big refunds need a human' deleted (the fault)", fault),
    ]


def live_tail(traffic: Traffic, minutes: float, filled: Fill) -> list[dict[str, Any]]:
    """Top the traffic up to the clock every few seconds; make the changes on time."""
    from django.utils import timezone

    began = time.monotonic()
    todo = _changes()
    made = []
    while True:
        filled.add(traffic.fill(timezone.now()))
        elapsed = time.monotonic() - began
        while todo and todo[0][0] <= elapsed:
            _offset, what, change = todo.pop(0)
            filled.add(traffic.fill(timezone.now()))  # nothing older is written after it
            change()
            traffic.refresh()
            made.append({"at": timezone.now().isoformat(), "what": what})
            print(f"  {timezone.now():%H:%M:%S} {what}")
        if elapsed >= minutes * 60 and not todo:
            return made
        time.sleep(TOP_UP_SECONDS)


# -- measuring -----------------------------------------------------------------------------


def _median_of(call: Callable[[], Any], runs: int) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return {"median_s": round(statistics.median(times), 4), "runs_s": [round(t, 4) for t in times]}


def _get(client: Any, path: str, **headers: Any) -> Callable[[], Any]:
    def call() -> Any:
        response = client.get(path, **headers)
        assert response.status_code == 200, (path, response.status_code)
        return response

    return call


def _queries(incident_id: int) -> dict[str, Any]:
    """One more analysis with its queries captured; EXPLAIN ANALYZE of the slowest."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from oversight.incidents.services import incident_analyse

    began = time.perf_counter()
    with CaptureQueriesContext(connection) as captured:
        incident_analyse(incident_id=incident_id)
    wall = time.perf_counter() - began
    timed = sorted(((float(q["time"]), q["sql"]) for q in captured.captured_queries), reverse=True)
    sql_s = sum(t for t, _ in timed)
    reads = [sql for _t, sql in timed if sql.lstrip().upper().startswith("SELECT")]
    plan: list[str] = []
    if reads:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + reads[0])
            plan = [row[0] for row in cursor.fetchall()]
    return {
        "wall_s": round(wall, 4),
        "queries": len(timed),
        "sql_s": round(sql_s, 4),
        "outside_sql_s": round(wall - sql_s, 4),
        "slowest": [{"s": round(t, 4), "sql": sql[:600]} for t, sql in timed[:5]],
        "explain_slowest_select": plan,
    }


def measure_scope(
    label: str, client: Any, bearer: str, runs: int, open_incident: Callable[[], Any]
) -> dict[str, Any]:
    from oversight.incidents.models import Incident
    from oversight.incidents.services import incident_analyse

    began = time.perf_counter()
    incident, _opened = open_incident()
    open_s = time.perf_counter() - began
    incident = Incident.objects.get(pk=incident.pk)
    report = incident.report or {}
    to_report = (incident.analysed_at - incident.opened_at).total_seconds()
    analyse = _median_of(lambda: incident_analyse(incident_id=incident.pk), runs)
    page_path, api_path = f"/incidents/{incident.pk}/", f"/api/v1/incidents/{incident.pk}"
    page = _get(client, page_path)()
    assert b"Blast radius" in page.content, "the page shows no analysis"
    blast = report.get("blast_radius", {})
    causes = report.get("causes", [])
    result = {
        "scope": label,
        "incident": incident.pk,
        "agents": len(report.get("agents", [])),
        "analysis_state": incident.analysis_state,
        "open_s": round(open_s, 4),
        "opened_to_report_s": round(to_report, 4),
        "first_analysis_s": round(incident.analysis_seconds or 0, 4),
        "incident_analyse": analyse,
        "page": _median_of(_get(client, page_path), runs) | {"bytes": len(page.content)},
        "api": _median_of(_get(client, api_path, HTTP_AUTHORIZATION=f"Bearer {bearer}"), runs),
        "report": {
            "window": report.get("window"),
            "series_actions": sum(row["actions"] for row in report.get("series", [])),
            "break": report.get("break"),
            "changes_considered": report.get("changes_considered"),
            "top_causes": [
                {"summary": c["summary"], "score": c["score"], "kind": c["kind"]}
                for c in causes[:3]
            ],
            "blast_radius": {
                k: blast.get(k) for k in ("since", "actions", "took_effect", "resources")
            },
            "timeline_entries": len(report.get("timeline", [])),
        },
        "captured": _queries(incident.pk),
    }
    result["met"] = result["opened_to_report_s"] <= TARGET_S
    return result


def baselines(client: Any, week_start: dt.datetime, report: dict[str, Any], runs: int) -> dict:
    from django.db import connection

    from oversight.gateway.models import Action

    def count_week() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM gateway_action WHERE created_at >= %s", [week_start]
            )
            return cursor.fetchone()[0]

    window = report["window"]
    start, end = (dt.datetime.fromisoformat(window[k]) for k in ("start", "end"))
    in_window = Action.objects.filter(created_at__gte=start, created_at__lt=end)
    return {
        "count_week": _median_of(count_week, runs) | {"rows": count_week()},
        "count_global_window": _median_of(in_window.count, runs) | {"rows": in_window.count()},
        "ping": _median_of(_get(client, "/ping"), runs),
    }


def _print_summary(result: dict[str, Any]) -> None:
    data = result["data"]
    print(
        f"\n== A week of traffic: {data['actions']:,} actions, {data['audit_events']:,} audit"
        f" events, {data['votes']:,} votes (filled in {data['fill_s']:.0f} s)\n"
    )
    head = f"{'scope':<12}{'open->report':>13}{'analyse':>9}{'page':>8}{'api':>8}{'queries':>9}"
    print(head + f"{'sql s':>8}  slowest query")
    print("-" * (len(head) + 30))
    for row in result["scopes"]:
        cap = row["captured"]
        print(
            f"{row['scope']:<12}{row['opened_to_report_s']:>12.2f}s"
            f"{row['incident_analyse']['median_s']:>8.2f}s{row['page']['median_s']:>7.3f}s"
            f"{row['api']['median_s']:>7.3f}s{cap['queries']:>9}{cap['sql_s']:>8.2f}"
            f"  {cap['slowest'][0]['s'] if cap['slowest'] else 0:.3f} s"
        )
    base = result["baselines"]
    print(
        f"\nbaseline: count(*) of the week {base['count_week']['median_s']:.3f} s"
        f" ({base['count_week']['rows']:,} rows); the global window's rows"
        f" {base['count_global_window']['median_s']:.3f} s; GET /ping"
        f" {base['ping']['median_s'] * 1000:.2f} ms"
    )
    verdict = "met" if all(row["met"] for row in result["scopes"]) else "NOT met"
    print(f"target: the report within {TARGET_S:.0f} s of opening: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rate", type=float, default=1.0, help="actions/s, all agents")
    parser.add_argument("--tail-minutes", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        sys.exit("Set DATABASE_URL (and DATABASE_OWNER_URL) to a PostgreSQL database to fill.")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H%M")
    out = args.out or ROOT / "bench" / "results" / f"incident-week-{stamp}.json"
    if args.child:
        measure(args, out)
        return
    print("migrating ...")
    fresh_database()
    # The measuring process's connections (some opened by the test client's threads) are
    # gone when it exits, so its database can be dropped afterwards.
    argv = [a for a in sys.argv[1:] if a != "--keep"]
    done = subprocess.run([sys.executable, __file__, *argv, "--child", "--out", str(out)])  # noqa: S603
    if not args.keep:
        drop_database()
    if done.returncode:
        sys.exit(done.returncode)


def _options(argv: list[str]) -> list[str]:
    """The options as given to the bench (without those it passes to its measuring run)."""
    return argv[: argv.index("--child")] if "--child" in argv else argv


def measure(args: argparse.Namespace, out: Path) -> None:
    from decide import report_head

    head = report_head("incident-week")
    head["argv"] = _options(head["argv"])
    _setup_django()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from oversight.accounts.models import Team
    from oversight.accounts.services import personal_token_create
    from oversight.agents.models import Agent
    from oversight.audit.actors import Actor
    from oversight.gateway.models import Action
    from oversight.incidents.models import Incident, TriggerKind
    from oversight.incidents.services import incident_open
    from oversight.monitoring.jobs import monitoring_backfill, monitoring_run
    from oversight.monitoring.models import Alert

    call_command("seed_demo", force=True, stdout=io.StringIO())
    now = timezone.now()
    week_start = now - dt.timedelta(days=args.days)
    traffic = Traffic(rate=args.rate, start=week_start, seed=args.seed)
    print(f"filling {args.days:g} days at {args.rate:g} actions/s ...")
    began, cpu = time.perf_counter(), _cpu_seconds()
    filled = traffic.fill(now)
    fill_s, fill_cpu = time.perf_counter() - began, _cpu_seconds() - cpu
    print(f"  {filled.actions:,} actions, {filled.events:,} events in {fill_s:.0f} s")
    began = time.perf_counter()
    backfill = monitoring_backfill(start=week_start, end=timezone.now())
    rollup_s = time.perf_counter() - began
    print(f"rollups: {backfill.minutes:,} minutes in {rollup_s:.1f} s; live tail ...")
    tail = Fill()
    changes = live_tail(traffic, args.tail_minutes, tail)
    tail.add(traffic.fill(timezone.now()))
    began = time.perf_counter()
    monitoring = monitoring_run(now=timezone.now())
    monitoring_s = time.perf_counter() - began
    automatic = list(Incident.objects.values("pk", "scope", "title", "analysis_seconds"))
    analyze_tables()
    admin = get_user_model().objects.get(username="admin")
    _token, bearer = personal_token_create(user=admin, name="bench")
    client = Client()
    client.force_login(admin)
    actor = Actor.for_user(admin)
    refund_bot = Agent.objects.select_related("team").get(slug="refund-bot")
    payments = Team.objects.get(slug="payments")

    def opener(target: tuple[str, str], summary: str, **scope: Any) -> Callable[[], Any]:
        return lambda: incident_open(
            actor=actor,
            user=admin,
            kind=TriggerKind.MANUAL,
            target=target,
            summary=summary,
            **scope,
        )

    print("opening incidents ...")
    scopes = [
        measure_scope(
            "refund-bot",
            client,
            bearer,
            args.runs,
            opener(("agents.agent", str(refund_bot.pk)), "Refund bot", agent=refund_bot),
        ),
        measure_scope(
            "payments",
            client,
            bearer,
            args.runs,
            opener(("accounts.team", str(payments.pk)), "Team payments", team=payments),
        ),
        measure_scope(
            "global", client, bearer, args.runs, opener(("oversight", "all"), "Everything")
        ),
    ]
    result = {
        **head,
        "command": " ".join(["bench/incident_week.py", *_options(sys.argv[1:])]),
        "settings": {
            "days": args.days,
            "rate": args.rate,
            "tail_minutes": args.tail_minutes,
            "runs": args.runs,
            "seed": args.seed,
            "INCIDENT_BUCKET_SECONDS": _setting("INCIDENT_BUCKET_SECONDS"),
            "INCIDENT_LOOKBACK_BUCKETS": _setting("INCIDENT_LOOKBACK_BUCKETS"),
        },
        "target_s": TARGET_S,
        "data": {
            "actions": Action.objects.count(),
            "audit_events": _count("audit_auditevent"),
            "votes": _count("approvals_approvalvote"),
            "by_status": dict(
                Action.objects.order_by()
                .values_list("status")
                .annotate(n=_n())
                .values_list("status", "n")
            ),
            "fill_s": round(fill_s, 1),
            "fill_cpu_s": round(fill_cpu, 1),
            "week": filled.__dict__,
            "tail": tail.__dict__,
            "rollup_minutes": backfill.minutes,
            "rollup_s": round(rollup_s, 2),
            "monitoring_run_s": round(monitoring_s, 2),
            "monitoring_alerts_opened": monitoring.opened,
            "alerts": Alert.objects.count(),
            "incidents_opened_automatically": automatic,
            "changes": changes,
            "database_size": _database_size(),
        },
        "scopes": scopes,
        "baselines": baselines(client, week_start, scopes[-1]["report"], args.runs),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
    }
    _print_summary(result)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written to {out}")


def _setting(name: str) -> Any:
    from django.conf import settings

    return getattr(settings, name)


def _n() -> Any:
    from django.db.models import Count

    return Count("pk")


def _count(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (our own table names)
        return cursor.fetchone()[0]


def _database_size() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return cursor.fetchone()[0]


if __name__ == "__main__":
    main()
