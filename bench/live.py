#!/usr/bin/env python
"""Live approvals: from a decision's commit to the fragment on reviewers' sockets, and a
pending action's long-poll after the deciding vote, served as in production.

Usage (as root or a user who can run PostgreSQL's initdb; loopback only):

    .venv/bin/python bench/live.py                 # the full run, about 8 minutes
    .venv/bin/python bench/live.py --quick         # a smoke run, about 2 minutes
    .venv/bin/python bench/live.py --sockets 100   # runs with 0, 1 and 100 sockets

What it does, all on 127.0.0.1:

1. Starts its own PostgreSQL 15 cluster (bench/decide.py's, durable defaults, plus
   track_commit_timestamp so that each action's commit time can be read afterwards) and
   its own redis-server on free ports.
2. Migrates, runs collectstatic (the Procfile's release step: with DEBUG off the pages
   need the manifest), and through the services creates a team, an owner, an agent
   whose policy grants payments.refund and holds refunds over 500 for one approval, a
   production token, and as many reviewers as the most sockets asked for (100 by
   default), each with approve access to the agent.
3. Serves `uvicorn oversight.asgi:application --workers 2 --no-access-log --ws
   oversight.live.websocket:SharedDeflateProtocol` (the Procfile's websocket protocol;
   `--ws auto` for uvicorn's own) with DEBUG off and REDIS_URL set (channels-redis,
   Celery on Redis), plus the Procfile's Celery worker. Session and CSRF cookies are not
   marked Secure (SESSION_COOKIE_SECURE=0, CSRF_COOKIE_SECURE=0) so that the reviewers
   can sign in over plain http.
4. Signs the reviewers in through the login page (CSRF and all) and connects their
   websockets to /ws/live/ with their session cookies and the site's Origin, in a client
   process of its own (the `websockets` library on uvloop).
5. Drives POST /api/v1/actions at a fixed rate (200/s; every 10th refund is over 500 and
   held) from a second client process (keep-alive HTTP/1.1 connections, one request every
   1/rate s), with 0, 1, 20 and 100 sockets connected (the runs with 0 and 1 are the
   baseline). A message carries a window's fragments for one group
   (oversight/live/batches.py) and every fragment names its action, so deliveries are
   counted per fragment; after each run, once no message has come for 3 s, each action's
   commit time is read from PostgreSQL (pg_xact_commit_timestamp of the row's xmin) and
   its created_at (set just before the commit, an upper bound), and each (socket,
   fragment) pair gives arrival - commit. Every socket must receive every action's feed
   row and every held action's queue item; the messages per socket per second and the
   fragments each carried are counted too.
6. Long-poll: creates held actions one at a time, starts GET /api/v1/actions/{id}?wait=30
   with the agent's token, and after 0.5 to 1 s has a reviewer approve or deny it through
   the queue page's htmx endpoint (POST /approvals/{id}/vote/ with session and CSRF
   token, and the request hash the card shows); measures from the vote's response (and
   its start) to the long-poll's answer. Done on an idle server, then during a last run
   of the traffic with the most sockets.
7. Records CPU per process group (server, PostgreSQL, Redis, Celery, the socket client,
   the load generator, this script, anything else) in cores busy. The server's CPU in the
   run without sockets is the decisions' (their fragments are rendered and published
   all the same); what a run with sockets uses beyond it is the live path's. Prints a
   summary and writes bench/results/live-<date>.json. Stops everything it started, also
   on Ctrl-C.

Each run first waits (up to --quiet-wait s) for a quiet machine; --keep keeps the logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import paced  # noqa: E402
from decide import (  # noqa: E402
    VENV_BIN,
    CpuMeter,
    Postgres,
    Server,
    ServerConfig,
    _cpu_ticks,
    _descendants,
    _machine_busy_ticks,
    free_port,
    project_env,
    python_speed,
    refund_agent_create,
    report_head,
    run,
    say,
)
from paced import spread  # noqa: E402

RESULTS = BENCH / "results"
PASSWORD = "bench-reviewer-" + "p" * 20
HELD_EVERY = 10  # every 10th request asks for a refund over 500, which is held
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Each kind of fragment the broadcasts send (templates/approvals, oversight/live/rows.py),
# by what names its action.
_FRAGMENT = re.compile(
    rf'afterbegin:#action-feed[^"]*"><tr id="action-(?P<feed_new>{UUID})"'
    rf'|<tr id="action-(?P<feed_update>{UUID})" hx-swap-oob="true"'
    rf'|beforeend:#approval-queue">\s*<article\b[^>]*?\bid="queue-(?P<queue_new>{UUID})"'
    rf'|id="queue-(?P<queue_gone>{UUID})" hx-swap-oob="delete"'
    rf'|id="queue-(?P<queue_update>{UUID})" hx-swap-oob="true"'
)


# --- pure parts -------------------------------------------------------------------------


def fragments(message: str) -> list[tuple[str, str]]:
    """[("feed-new" | "feed-update" | "queue-new" | "queue-update" | "queue-gone", action
    id)] of one websocket message, in order: a message carries a window's fragments for a
    group (oversight/live/batches.py). [("other", "")] if it names no action (a banner)."""
    found = [
        (kind.replace("_", "-"), action_id)
        for match in _FRAGMENT.finditer(message)
        for kind, action_id in match.groupdict().items()
        if action_id
    ]
    return found or [("other", "")]


def refund_body(tag: str, i: int, *, held: bool) -> bytes:
    return json.dumps(
        {
            "action": "payments.refund",
            "resource": f"stripe:charge/ch_{tag}_{i}",
            "params": {"amount": 900 if held else 120, "currency": "usd"},
            "reason": "customer asked for a refund",
        },
        separators=(",", ":"),
    ).encode()


def deliveries(
    records: list[list[Any]],
    sockets: int,
    actions: dict[str, dict[str, Any]],
    workers: list[int] | None = None,
) -> dict[str, Any]:
    """Per (socket, fragment) latency from commit, and what each socket missed.

    ``records``: [socket, arrival (epoch s), kind, action id] from the socket client;
    ``actions``: id -> {"commit": epoch s, "created": epoch s, "pending": bool}, the actions
    the load generator created; ``workers``: the server process of each socket. Every socket
    should get each one's feed-new and, if it was held, its queue-new, exactly once."""
    from_commit: dict[str, list[float]] = {"feed-new": [], "queue-new": []}
    by_worker: dict[int, list[float]] = {}
    first: dict[tuple[str, str], float] = {}
    last: dict[tuple[str, str], float] = {}
    from_created: list[float] = []
    seen: dict[tuple[int, str, str], int] = Counter()
    other = Counter()
    for sock, arrived, kind, action_id in records:
        action = actions.get(action_id)
        if kind not in from_commit or action is None:
            other[kind] += 1
            continue
        seen[sock, kind, action_id] += 1
        if seen[sock, kind, action_id] > 1:
            continue
        from_commit[kind].append(arrived - action["commit"])
        from_created.append(arrived - action["created"])
        if workers:
            by_worker.setdefault(workers[sock], []).append(arrived - action["commit"])
        key = (kind, action_id)
        first[key] = min(first.get(key, arrived), arrived)
        last[key] = max(last.get(key, arrived), arrived)
    held = sum(1 for a in actions.values() if a["pending"])
    per_socket = []
    for sock in range(sockets):
        feed = sum(1 for a in actions if (sock, "feed-new", a) in seen)
        queue = sum(
            1 for a, v in actions.items() if v["pending"] and (sock, "queue-new", a) in seen
        )
        per_socket.append({"feed": feed, "queue": queue})
    all_values = from_commit["feed-new"] + from_commit["queue-new"]
    return {
        "expected_per_socket": {"feed": len(actions), "queue": held},
        "received_per_socket": per_socket,
        "missing": sum(len(actions) - s["feed"] + held - s["queue"] for s in per_socket),
        "duplicates": sum(n - 1 for n in seen.values() if n > 1),
        "other_messages": dict(other),
        "commit_to_socket_ms": spread(all_values),
        "commit_to_socket_ms_feed": spread(from_commit["feed-new"]),
        "commit_to_socket_ms_queue": spread(from_commit["queue-new"]),
        "created_at_to_socket_ms": spread(from_created),
        "commit_to_first_socket_ms": spread([first[k] - actions[k[1]]["commit"] for k in first]),
        "first_to_last_socket_ms": spread([last[k] - first[k] for k in first]),
        "commit_to_socket_ms_by_worker": {str(w): spread(v) for w, v in by_worker.items()},
    }


def live_path_cpu(phases: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per run with sockets: the server's CPU beyond the same traffic's with none (the
    baseline: the decisions, with their fragments rendered and published), in cores."""
    baseline = next((p for p in phases if p["sockets"] == 0 and "long_poll" not in p), None)
    if baseline is None:
        return {}
    decisions = baseline["cpu"]["cores_busy"]["server"]
    out = {}
    for p in phases:
        if p["sockets"]:
            live = p["cpu"]["cores_busy"]["server"] - decisions
            out[p["label"]] = {
                "decision_cores": round(decisions, 3),
                "live_path_cores": round(live, 3),
                "live_to_decisions": round(live / decisions, 3) if decisions else None,
            }
    return out


def framing(
    frames: list[int],
    received_bytes: list[int],
    wire_bytes: list[int],
    fragments: int,
    seconds: float,
) -> dict[str, Any]:
    """The websocket messages (frames) the sockets received during a run of ``seconds``:
    per socket per second, and what each carried on average (``fragments``: all sockets'
    fragment records; bytes after decompression, and as read from the wire)."""
    total = sum(frames)
    return {
        "frames": total,
        "frames_per_socket_per_s": round(total / len(frames) / seconds, 1) if frames else 0,
        "fragments_per_frame": round(fragments / total, 2) if total else 0,
        "bytes_per_frame": round(sum(received_bytes) / total) if total else 0,
        "wire_bytes_per_frame": round(sum(wire_bytes) / total) if total else 0,
        "wire_kbytes_per_socket_per_s": (
            round(sum(wire_bytes) / len(frames) / seconds / 1000, 1) if frames else 0
        ),
    }


# --- setup, in a subprocess with the project's environment --------------------------------


def setup_data(reviewers: int, email: bool) -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from oversight.accounts import roles
    from oversight.agents.services import agent_access_grant, token_create
    from oversight.audit.actors import Actor
    from oversight.notifications.services import team_channels_update
    from oversight.policy.models import Grant, Rule
    from oversight.policy.services import policy_object_create

    actor = Actor.system("bench")
    users = get_user_model().objects
    agent = refund_agent_create(actor)
    team, owner = agent.team, agent.owner
    grant = Grant(agent=agent, action="payments.refund", resource="stripe:charge/*")
    policy_object_create(actor=actor, obj=grant)
    reviewer_group = Group.objects.get_or_create(name=roles.REVIEWER)[0]
    names = []
    for i in range(reviewers):
        name = f"reviewer{i:02d}"
        user = users.create_user(username=name, email=f"{name}@example.com", password=PASSWORD)
        user.groups.add(reviewer_group)
        agent_access_grant(actor=actor, agent=agent, user=user, level="reviewer")
        names.append(name)
    # after the reviewers: a hold rule nobody can approve is refused
    rule = Rule(
        agent=agent,
        name="large refunds",
        effect="hold",
        action="payments.refund",
        resource="*",
        condition="params.amount > 500",
    )
    policy_object_create(actor=actor, obj=rule)
    if email:
        team_channels_update(actor=actor, team=team, email_enabled=True, webhook_url="")
    _token, raw = token_create(
        actor=actor, agent=agent, environment="production", name="bench", created_by=owner
    )
    return {
        "token": raw,
        "agent_id": agent.pk,
        "agent": agent.slug,
        "reviewers": names,
        "policy": ["grant payments.refund on stripe:charge/*", "hold if params.amount > 500"],
        "team_email_notifications": email,
    }


# --- processes we start -----------------------------------------------------------------


class Redis:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [
                shutil.which("redis-server") or "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.work),
                "--logfile",
                str(self.work / "redis.log"),
            ],
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def version(self) -> str:
        out = run(["redis-server", "--version"]).stdout
        return next((p[2:] for p in out.split() if p.startswith("v=")), out.strip())

    def stop(self) -> None:
        _stop_group(self.proc)
        self.proc = None


def _stop_group(proc: subprocess.Popen[Any] | asyncio.subprocess.Process | None) -> None:
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


WS_PROTOCOL = "oversight.live.websocket:SharedDeflateProtocol"  # the Procfile's


class LiveServer(Server):
    """decide.py's uvicorn, with the environment given (REDIS_URL and cookies over http)
    and the websocket protocol ``ws`` (uvicorn's --ws)."""

    def __init__(self, pg: Postgres, log: Path, env: dict[str, str], ws: str) -> None:
        super().__init__(pg, ServerConfig(2, int(env.get("DB_POOL_MAX", "20"))), log)
        self.env = env
        self.command += ["--ws", ws]

    def environment(self) -> dict[str, str]:
        return self.env

    def workers(self) -> list[int]:
        return [p["pid"] for p in self.processes() if p["role"] == "worker"]


def start_celery(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The Procfile's worker (prefork, one process per core), logging warnings only."""
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603
            [str(VENV_BIN / "celery"), "-A", "oversight", "worker", "--loglevel", "WARNING"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# --- the socket client (a subprocess: --socket-client) -----------------------------------


async def socket_client() -> None:
    """Reads {"url", "origin", "cookies": [...]} on stdin's first line, connects one socket
    per cookie, says READY; then on "DUMP <path>" writes [socket, arrival, kind, id] records,
    one per fragment, and each socket's count of messages (frames), bytes received (after
    decompression) and bytes read from the wire so far (and forgets them), on "STOP"
    closes."""
    from websockets.asyncio.client import ClientConnection, connect

    config = json.loads(sys.stdin.readline())
    records: list[tuple[int, float, str, str]] = []
    frames = [0] * len(config["cookies"])
    received_bytes = [0] * len(config["cookies"])
    wire_bytes = [0] * len(config["cookies"])

    def counting(i: int) -> type[ClientConnection]:
        class Counting(ClientConnection):
            """Counts what arrives on the wire: compressed frames with their headers."""

            def data_received(self, data: bytes) -> None:
                wire_bytes[i] += len(data)
                super().data_received(data)

        return Counting

    last = [time.time()]
    closed: list[list[Any]] = []

    async def reader(i: int, ws: Any) -> None:
        try:
            async for message in ws:
                arrived = last[0] = time.time()
                frames[i] += 1
                received_bytes[i] += len(message)
                for kind, action_id in fragments(message):
                    records.append((i, arrived, kind, action_id))
        except Exception as exc:  # a socket that drops is reported, not fatal
            closed.append([i, repr(exc)])
        else:
            closed.append([i, f"closed {ws.close_code}"])

    sockets = [
        await connect(
            config["url"],
            origin=config["origin"],
            additional_headers={"Cookie": cookie},
            compression="deflate" if config["deflate"] else None,
            max_size=2**22,
            open_timeout=30,
            create_connection=counting(i),
        )
        for i, cookie in enumerate(config["cookies"])
    ]
    tasks = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
    ports = ",".join(str(ws.local_address[1]) for ws in sockets)
    print(f"READY {len(sockets)} {ports}", flush=True)
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")  # the parent went away

    threading.Thread(target=read_stdin, daemon=True).start()
    while True:
        command = (await lines.get()).strip()
        if command.startswith("DUMP "):
            taken, records[:] = list(records), []
            counts = {"frames": list(frames), "bytes": list(received_bytes)}
            counts["wire_bytes"] = list(wire_bytes)
            frames[:], received_bytes[:] = [0] * len(frames), [0] * len(frames)
            wire_bytes[:] = [0] * len(frames)
            Path(command[5:]).write_text(json.dumps({"records": taken, "closed": closed, **counts}))
            usage = resource.getrusage(resource.RUSAGE_SELF)
            print(f"DUMPED {len(taken)} {usage.ru_utime + usage.ru_stime}", flush=True)
        elif command.startswith("WAIT "):  # until nothing came for `quiet` s, at most `limit`
            quiet, limit = (float(x) for x in command.split()[1:])
            deadline = time.time() + limit
            while time.time() - last[0] < quiet and time.time() < deadline:
                await asyncio.sleep(0.1)
            print(f"QUIET {time.time() - last[0]:.1f}", flush=True)
        elif command == "STOP" or not command:
            break
    for ws in sockets:
        await ws.close()
    for task in tasks:
        task.cancel()


class SocketClient:
    def __init__(
        self, base: str, sessions: list[dict[str, Any]], work: Path, *, deflate: bool = True
    ) -> None:
        self.work = work
        self.config = {
            "url": base.replace("http://", "ws://") + "/ws/live/",
            "origin": base,
            "cookies": [s["cookie"] for s in sessions],
            "deflate": deflate,  # permessage-deflate, as browsers ask for
        }
        self.proc: subprocess.Popen[str] | None = None
        self.dumps = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, __file__, "--socket-client"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(self.config) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"socket client failed: {line!r}")
        self.ports = [int(p) for p in line.split()[2].split(",")]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_quiet(self, quiet: float = 3, limit: float = 120) -> None:
        """Until no fragment has come for ``quiet`` s: a server that fell behind is still
        sending what the run caused (at most ``limit`` s)."""
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"WAIT {quiet} {limit}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("QUIET"):
            raise RuntimeError(f"socket client failed: {line!r}")

    def dump(self) -> dict[str, Any]:
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.dumps += 1
        path = self.work / f"sockets-{self.dumps}.json"
        self.proc.stdin.write(f"DUMP {path}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("DUMPED"):
            raise RuntimeError(f"socket client failed: {line!r}")
        return json.loads(path.read_text())

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(BrokenPipeError, OSError):
            assert self.proc.stdin
            self.proc.stdin.write("STOP\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            _stop_group(self.proc)
        self.proc = None


# --- the load generator (a subprocess: --drive) ------------------------------------------


async def drive(base: str, token: str, rate: float, seconds: float, tag: str, out: Path) -> None:
    """POST /api/v1/actions at a fixed rate (bench/paced.py): every HELD_EVERY-th is held."""
    host = base.removeprefix("http://")
    auth = {"Authorization": f"Bearer {token}"}

    def request(i: int) -> bytes:
        body = refund_body(tag, i, held=i % HELD_EVERY == HELD_EVERY - 1)
        return paced.post(host, "/api/v1/actions", body, auth)

    out.write_text(json.dumps(await paced.drive(base, request, rate, seconds)))


# --- signing in, and the long-poll --------------------------------------------------------


async def sign_in(base: str, username: str) -> dict[str, Any]:
    """Through the login page, as a browser does; then the queue page for the CSRF token
    that its htmx requests send (login rotates it)."""
    import httpx

    async with httpx.AsyncClient(base_url=base, headers={"Origin": base}, timeout=60) as client:
        page = await client.get("/login/")
        form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if page.status_code != 200 or form_token is None:
            raise RuntimeError(f"login page: {page.status_code} {page.text[:300]}")
        answer = await client.post(
            "/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": form_token[1]},
            headers={"Referer": base + "/login/"},
        )
        if answer.status_code != 302 or "sessionid" not in client.cookies:
            raise RuntimeError(f"login of {username}: {answer.status_code} {answer.text[:300]}")
        queue = await client.get("/approvals/")
        csrf = re.search(r'"X-CSRFToken": "([^"]+)"', queue.text)
        if queue.status_code != 200 or csrf is None:
            raise RuntimeError(f"queue page: {queue.status_code}")
        cookies = {name: value for name, value in client.cookies.items()}
    return {
        "username": username,
        "cookies": cookies,
        "cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        "csrf": csrf[1],
    }


async def long_polls(
    base: str,
    token: str,
    sessions: list[dict[str, Any]],
    count: int,
    tag: str,
    until: asyncio.Future[Any] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One held action at a time: long-poll it, vote on it 0.5-1 s later (every third vote
    a deny), and time the long-poll's answer against the vote. Returns (the timings, the
    votes that failed)."""
    import httpx

    from oversight.gateway.hashing import action_hash  # what the card's form sends

    rng = random.Random(tag)  # noqa: S311 (when to vote, not a secret)
    api = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    people = [
        httpx.AsyncClient(
            base_url=base,
            cookies=s["cookies"],
            timeout=60,
            headers={
                "Origin": base,
                "Referer": base + "/approvals/",
                "X-CSRFToken": s["csrf"],
                "HX-Request": "true",
            },
        )
        for s in sessions
    ]
    out: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    try:
        for k in range(count):
            if until is not None and until.done():
                break
            vote = "deny" if k % 3 == 2 else "approve"
            body = refund_body(f"lp{tag}", k, held=True)
            asked = json.loads(body)
            seen = action_hash(asked["action"], asked["resource"], asked["params"])
            held = await api.post(
                "/api/v1/actions", content=body, headers={"Content-Type": "application/json"}
            )
            action = held.json()
            if held.status_code != 201 or action["status"] != "pending":
                raise RuntimeError(f"long-poll setup: {held.status_code} {held.text[:300]}")
            poll_start = time.time()
            poll = asyncio.create_task(timed(api.get(f"/api/v1/actions/{action['id']}?wait=30")))
            await asyncio.sleep(rng.uniform(0.5, 1.0))
            if poll.done():
                raise RuntimeError(f"the long-poll answered early: {poll.result()[0].text[:300]}")
            person = people[k % len(people)]
            vote_start = time.time()
            voted = await person.post(
                f"/approvals/{action['id']}/vote/",
                data={
                    "vote": vote,
                    "comment": "bench: not this one" if vote == "deny" else "",
                    "request_hash": seen,
                },
            )
            vote_end = time.time()
            if voted.status_code != 200:  # the action stays pending: no use waiting 30 s
                poll.cancel()
                failed.append({"id": action["id"], "vote": vote, "vote_http": voted.status_code})
                continue
            answer, poll_end = await poll
            out.append(
                {
                    "id": action["id"],
                    "vote": vote,
                    "vote_http": voted.status_code,
                    "vote_s": vote_end - vote_start,
                    "poll_http": answer.status_code,
                    "poll_status": answer.json().get("status"),
                    "poll_start": poll_start,
                    "vote_start": vote_start,
                    "vote_end": vote_end,
                    "poll_end": poll_end,
                    "during_traffic": until is not None and not until.done(),
                }
            )
    finally:
        await api.aclose()
        for person in people:
            await person.aclose()
    return out, failed


async def timed(request: Any) -> tuple[Any, float]:
    """The answer, and when it came (not when it was awaited)."""
    answer = await request
    return answer, time.time()


def long_poll_summary(
    polls: list[dict[str, Any]], commits: dict[str, float], failed: list[dict[str, Any]]
) -> dict[str, Any]:
    def part(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "n": len(rows),
            "vote_request_ms": spread([r["vote_s"] for r in rows]),
            "poll_after_vote_response_ms": spread([r["poll_end"] - r["vote_end"] for r in rows]),
            "poll_after_vote_start_ms": spread([r["poll_end"] - r["vote_start"] for r in rows]),
            "poll_after_vote_commit_ms": spread(
                [r["poll_end"] - commits[r["id"]] for r in rows if r["id"] in commits]
            ),
        }

    return {
        "all": part(polls),
        "approve": part([r for r in polls if r["vote"] == "approve"]),
        "deny": part([r for r in polls if r["vote"] == "deny"]),
        "vote_http": dict(Counter(str(r["vote_http"]) for r in polls + failed)),
        "failed_votes": failed,
        "poll_answers": dict(Counter(f"{r['poll_http']} {r['poll_status']}" for r in polls)),
        "during_traffic": sum(1 for r in polls if r["during_traffic"]),
    }


# --- measuring ---------------------------------------------------------------------------


class Meter:
    """CPU seconds per process group; the load generator reports its own."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots

    def snapshot(self) -> dict[str, Any]:
        ours = {name: _descendants(pid) for name, pid in self.roots.items()}
        snap: dict[str, Any] = {
            name: sum(_cpu_ticks(p) for p in pids) / CpuMeter.TICK for name, pids in ours.items()
        }
        usage = resource.getrusage(resource.RUSAGE_SELF)
        snap["bench_script"] = usage.ru_utime + usage.ru_stime
        snap["machine"] = _machine_busy_ticks() / CpuMeter.TICK
        snap["wall"] = time.monotonic()
        snap["_stat"] = _stat_ticks()
        mine = {os.getpid(), *(p for pids in ours.values() for p in pids)}
        snap["_others"] = {
            int(e.name): _cpu_ticks(int(e.name))
            for e in Path("/proc").iterdir()
            if e.name.isdigit() and int(e.name) not in mine
        }
        return snap

    @staticmethod
    def delta(before: dict[str, Any], after: dict[str, Any], generator_s: float) -> dict[str, Any]:
        d = {k: after[k] - before[k] for k in before if not k.startswith("_")}
        wall = d.pop("wall")
        d["load_generator"] = generator_s
        ours = sum(v for k, v in d.items() if k != "machine" and not k.startswith("server_"))
        d["other_processes"] = max(0.0, d["machine"] - ours)
        busiest = sorted(
            (
                (after["_others"][pid] - ticks, pid)
                for pid, ticks in before["_others"].items()
                if pid in after["_others"]
            ),
            reverse=True,
        )[:4]
        return {
            "wall_s": round(wall, 2),
            "cores_busy": {k: round(v / wall, 3) for k, v in d.items()},
            # the machine's busy time by kind: steal (the hypervisor ran someone else) and
            # softirq (loopback networking) belong to no process
            "machine_cores_by_kind": {
                k: round((after["_stat"][k] - v) / CpuMeter.TICK / wall, 3)
                for k, v in before["_stat"].items()
            },
            "busiest_other_processes": [
                {"cores": round(t / CpuMeter.TICK / wall, 3), "command": _command(pid)}
                for t, pid in busiest
                if t > 0
            ],
        }


def _stat_ticks() -> dict[str, int]:
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    values = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    return {k: int(v) for k, v in zip(names, values, strict=True) if k not in ("idle", "iowait")}


def _command(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    return text.strip()[:80] or f"[{Path(f'/proc/{pid}/comm').read_text().strip()}]"


def commit_times(pg: Postgres, ids: list[str]) -> dict[str, dict[str, Any]]:
    with pg.connect() as conn:
        rows = conn.execute(
            """
            SELECT id::text, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8,
                   extract(epoch FROM created_at)::float8, status
            FROM gateway_action WHERE id = ANY(%s::uuid[])
            """,
            [ids],
        ).fetchall()
    return {
        i: {"commit": commit, "created": created, "pending": status == "pending"}
        for i, commit, created, status in rows
    }


def wait_for_subscribers(redis_url: str, agent_id: int, workers: int) -> None:
    """Until the workers holding sockets have subscribed to the agent's groups (a socket
    joins them just after it is accepted)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    channels = [f"oversight-db0__group__agent-{agent_id}-{g}" for g in ("feed", "queue")]
    deadline = time.monotonic() + 20
    try:
        while True:
            counts = dict(client.pubsub_numsub(*channels))
            if all(counts.get(c.encode(), 0) >= workers for c in channels):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"groups not subscribed: {counts}")
            time.sleep(0.1)
    finally:
        client.close()


def socket_workers(port: int, client_ports: list[int]) -> list[int]:
    """The server process (pid) holding each of the client's sockets, from `ss`."""
    out = run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"]).stdout
    owner = {}
    for line in out.splitlines():
        peer = re.search(r"127\.0\.0\.1:\d+\s+127\.0\.0\.1:(\d+)", line)
        pid = re.search(r"pid=(\d+)", line)
        if peer and pid:
            owner[int(peer[1])] = int(pid[1])
    return [owner.get(p, 0) for p in client_ports]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.pg = Postgres(work)
        self.redis = Redis(work)
        self.server: LiveServer | None = None
        self.celery: subprocess.Popen[bytes] | None = None
        self.sockets: SocketClient | None = None
        self.setup: dict[str, Any] = {}
        self.socket_pids: list[int] = []
        self.sessions: list[dict[str, Any]] = []

    def env(self) -> dict[str, str]:
        window = {} if self.args.window is None else {"LIVE_BATCH_WINDOW_MS": str(self.args.window)}
        return project_env(
            self.pg,
            REDIS_URL=self.redis.url,
            SESSION_COOKIE_SECURE="0",
            CSRF_COOKIE_SECURE="0",
            DB_POOL_MAX=str(self.args.pool),
            **window,
        )

    def start(self) -> None:
        say(f"PostgreSQL in {self.work} on port {self.pg.port} (durable defaults)")
        self.pg.start()
        with self.pg.connect("postgres") as conn:
            conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
        as_pg = self.pg.as_pg
        pg_ctl = [
            *as_pg,
            str(self.pg.bin / "pg_ctl"),
            "-D",
            str(self.pg.data),
            "-l",
            str(self.pg.log),
        ]
        run([*pg_ctl, "-w", "-m", "fast", "restart"])
        say(f"redis-server on port {self.redis.port}")
        self.redis.start()
        env = self.env()
        say("migrating, collecting static files; creating the team, agent, token and reviewers")
        run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env)
        # The Procfile's release step: pages name static files through the manifest.
        run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env)
        out = run(
            [sys.executable, __file__, "--setup-only", str(self.args.reviewers)]
            + (["--email"] if self.args.email else []),
            cwd=ROOT,
            env=env,
        ).stdout
        self.setup = json.loads(out.split("BENCH_JSON ", 1)[1])
        self.celery = start_celery(env, self.work / "celery.log")
        self.server = LiveServer(self.pg, self.work / "uvicorn.log", env, self.args.ws)
        self.server.start()
        say(f"serving at {self.server.url}, workers {self.server.workers()}")

    def stop(self) -> None:
        for step in (
            lambda: self.sockets and self.sockets.stop(),
            lambda: self.server and self.server.stop(),
            lambda: _stop_group(self.celery),
            self.redis.stop,
            self.pg.stop,
        ):
            with contextlib.suppress(Exception):
                step()

    def meter(self) -> Meter:
        assert self.server and self.celery
        roots = {
            "server": self.server.pid,
            "postgres": self.pg.pid,
            "redis": self.redis.pid,
            "celery": self.celery.pid,
        }
        if self.sockets and self.sockets.proc:
            roots["socket_client"] = self.sockets.pid
        for pid in self.server.workers():  # part of "server", shown apart
            roots[f"server_worker_{pid}"] = pid
        return Meter(roots)

    async def traffic(
        self, label: str, seconds: float, *, polls: int = 0, measure: bool = True
    ) -> dict[str, Any]:
        assert self.server
        out = self.work / f"drive-{label}.json"
        meter = self.meter()
        before = meter.snapshot()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--drive",
            self.server.url,
            "--rate",
            str(self.args.rate),
            "--seconds",
            str(seconds),
            "--tag",
            label,
            "--out",
            str(out),
            env={**os.environ, "BENCH_TOKEN": self.setup["token"]},
            start_new_session=True,
        )
        finished = asyncio.ensure_future(proc.wait())
        polled: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        try:
            if polls:
                await asyncio.sleep(1)
                polled, failed = await long_polls(
                    self.server.url, self.setup["token"], self.sessions, polls, label, finished
                )
            await finished
        finally:
            _stop_group(proc)
        after = meter.snapshot()
        if proc.returncode != 0:
            raise RuntimeError(f"load generator exited with {proc.returncode}")
        data = json.loads(out.read_text())
        if not measure:
            return {}
        if not data["rows"]:
            raise RuntimeError(f"no request succeeded: {data['errors']}")
        result: dict[str, Any] = {
            "label": label,
            "load": paced.summary(data, self.args.rate),
            "cpu": Meter.delta(before, after, data["cpu_s"]),
        }
        time.sleep(2)  # stragglers
        ids = [r[4] for r in data["rows"] if r[3] == 201]
        actions = commit_times(self.pg, ids)
        if self.sockets:
            drained = time.monotonic()
            self.sockets.wait_quiet()
            result["socket_drain_s"] = round(time.monotonic() - drained, 1)
            dumped = self.sockets.dump()
            result["sockets"] = len(self.sockets.config["cookies"])
            result["sockets_per_worker"] = {
                str(w): self.socket_pids.count(w) for w in self.server.workers()
            }
            result["delivery"] = deliveries(
                dumped["records"], result["sockets"], actions, self.socket_pids
            )
            result["framing"] = framing(
                dumped["frames"],
                dumped["bytes"],
                dumped["wire_bytes"],
                len(dumped["records"]),
                seconds,
            )
            result["socket_closes"] = dumped["closed"]
            if polled:
                result["vote_fragments"] = self.vote_fragments(polled, dumped["records"])
        else:
            result["sockets"] = 0
        if polled:
            result["long_poll"] = long_poll_summary(polled, self.vote_commits(polled), failed)
        return result

    def vote_commits(self, polled: list[dict[str, Any]]) -> dict[str, float]:
        found = commit_times(self.pg, [r["id"] for r in polled])
        return {i: a["commit"] for i, a in found.items()}

    def vote_fragments(
        self, polled: list[dict[str, Any]], records: list[list[Any]]
    ) -> dict[str, Any]:
        """The vote's own broadcast (feed row update, queue item gone), from its commit."""
        commits = self.vote_commits(polled)
        values = [
            t - commits[i]
            for _s, t, kind, i in records
            if kind in ("feed-update", "queue-gone") and i in commits
        ]
        return {
            "expected": 2 * len(commits) * len(self.sessions),
            "commit_to_socket_ms": spread(values),
        }

    async def connect_sockets(self, count: int) -> dict[str, Any]:
        assert self.server
        if self.sockets:
            self.sockets.stop()
        self.sockets = SocketClient(
            self.server.url, self.sessions[:count], self.work, deflate=not self.args.no_deflate
        )
        self.sockets.start()
        self.socket_pids = socket_workers(self.server.port, self.sockets.ports)
        per_worker = {str(w): self.socket_pids.count(w) for w in self.server.workers()}
        holding = sum(1 for n in per_worker.values() if n)
        wait_for_subscribers(self.redis.url, self.setup["agent_id"], holding)
        await asyncio.sleep(1)
        say(f"{count} sockets connected; per worker {per_worker}")
        return per_worker


async def run_all(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    assert bench.server
    report: dict[str, Any] = {"phases": []}
    say(f"signing in {len(bench.setup['reviewers'])} reviewers through the login page")
    bench.sessions = [await sign_in(bench.server.url, name) for name in bench.setup["reviewers"]]
    say("warm-up: 5 s of traffic (not counted)")
    await bench.traffic("warmup", 5, measure=False)

    async def phase(count: int, polls: int) -> None:
        label = f"{count}-sockets" + ("+votes" if polls else "")
        say(
            f"traffic: {args.rate}/s for {args.seconds} s, {count} sockets"
            + (f", votes on {polls} held actions meanwhile" if polls else "")
        )
        busy = wait_for_quiet(args.quiet_wait, args.max_other)
        result = await bench.traffic(label, args.seconds, polls=polls)
        result["machine_busy_cores_before"] = busy
        result["python_speed_us_after"] = python_speed()
        show_phase(result)
        report["phases"].append(result)

    for count in args.socket_counts:
        if count:
            report.setdefault("sockets_per_worker", {})[str(count)] = await bench.connect_sockets(
                count
            )
        elif bench.sockets:
            bench.sockets.stop()
            bench.sockets = None
        await phase(count, 0)

    say(f"long-poll on an idle server: {args.idle_polls} held actions, one at a time")
    wait_for_quiet(args.quiet_wait, args.max_other)
    idle_before = bench.meter().snapshot()
    polled, failed = await long_polls(
        bench.server.url, bench.setup["token"], bench.sessions, args.idle_polls, "idle"
    )
    idle: dict[str, Any] = {
        "long_poll": long_poll_summary(polled, bench.vote_commits(polled), failed)
    }
    idle["cpu"] = Meter.delta(idle_before, bench.meter().snapshot(), 0.0)
    if bench.sockets:
        bench.sockets.wait_quiet()
        dumped = bench.sockets.dump()
        idle["vote_fragments"] = bench.vote_fragments(polled, dumped["records"])
    say(f"  after vote response: {idle['long_poll']['all']['poll_after_vote_response_ms']}")
    report["idle_long_poll"] = idle
    if args.polls:  # last: a vote under traffic may deadlock with decisions (see the docs)
        await phase(max(args.socket_counts), args.polls)
    return report


def wait_for_quiet(limit: float, max_busy: float) -> float:
    """Up to ``limit`` seconds for the machine (our idle servers included) to be quiet."""
    deadline = time.monotonic() + limit
    while True:
        before = _machine_busy_ticks()
        time.sleep(1)
        busy = (_machine_busy_ticks() - before) / CpuMeter.TICK
        if busy <= max_busy or time.monotonic() >= deadline:
            if busy > max_busy:
                say(f"  (the machine is busy: {busy:.2f} cores; measuring anyway)")
            return round(busy, 2)


def show_phase(r: dict[str, Any]) -> None:
    load, cores = r["load"], r["cpu"]["cores_busy"]
    say(
        f"  {r['label']}: sent {load['sent_rps']}/s of {load['target_rps']}, "
        f"{load['http_statuses']}, response p50 {load['response_ms']['p50']} "
        f"p99 {load['response_ms']['p99']} ms"
    )
    say(f"    cores busy: {cores}")
    if "delivery" in r:
        d = r["delivery"]
        say(f"    commit->socket {d['commit_to_socket_ms']}")
        say(f"    missing {d['missing']}, duplicates {d['duplicates']}")
    if "long_poll" in r:
        lp = r["long_poll"]
        say(f"    votes {lp['vote_http']}; long-poll answers {lp['poll_answers']}")
        say(f"    long-poll after the vote's response {lp['all']['poll_after_vote_response_ms']}")


def summarise(report: dict[str, Any], args: argparse.Namespace) -> None:
    main_phase = next(p for p in report["phases"] if p["sockets"] == max(args.socket_counts))
    d = main_phase.get("delivery", {})
    voting = next((p for p in report["phases"] if "long_poll" in p), {})
    polls = [voting.get("long_poll", {}), report["idle_long_poll"]["long_poll"]]
    worst = max(
        (x["all"]["poll_after_vote_response_ms"].get("max", 0) for x in polls if x), default=0
    )
    failed = sum(len(x["failed_votes"]) for x in polls if x)
    reached = main_phase["load"]["sent_rps"] >= 0.95 * args.rate
    live_cpu = live_path_cpu(report["phases"])
    ratio = live_cpu.get(main_phase["label"], {}).get("live_to_decisions")
    report["targets"] = {
        "commit_to_socket_p95_ms": d.get("commit_to_socket_ms", {}).get("p95"),
        # a server that holds the load generator back has not shown it at the rate
        "commit_to_socket_p95_met": reached and bool(d) and d["commit_to_socket_ms"]["p95"] <= 250,
        "no_fragment_lost": bool(d) and d["missing"] == 0,
        "live_cpu_to_decisions": ratio,
        "live_cpu_met": ratio is not None and ratio <= 0.25,
        "rate_reached": reached,
        "long_poll_max_after_vote_ms": worst,
        "votes_failed": failed,
        "long_poll_met": worst <= 1000 and not failed,
    }
    print("\n== Summary: live approvals (ms; CPU in cores busy)\n")
    columns = ("sent/s", "resp p50", "p99", "c->s p50", "p95", "p99", "max", "missing")
    columns += ("server", "pg", "redis", "ws cl", "load", "other")
    print(f"{'phase':<12}" + "".join(f"{c:>9}" for c in columns))
    for p in report["phases"]:
        c, load = p["cpu"]["cores_busy"], p["load"]
        lat = p.get("delivery", {}).get("commit_to_socket_ms", {})
        cells = [load["sent_rps"], load["response_ms"]["p50"], load["response_ms"]["p99"]]
        cells += [lat.get(k, "-") for k in ("p50", "p95", "p99", "max")]
        cells += [p.get("delivery", {}).get("missing", "-")]
        cells += [c["server"], c["postgres"], c["redis"], c.get("socket_client", 0)]
        cells += [c["load_generator"], c["other_processes"]]
        print(f"{p['label']:<12}" + "".join(f"{x:>9}" for x in cells))
    for label, cpu in live_cpu.items():
        framed = next(p for p in report["phases"] if p["label"] == label).get("framing", {})
        print(
            f"{label}: live path {cpu['live_path_cores']} server cores, "
            f"{cpu['live_to_decisions']} of the decisions' {cpu['decision_cores']}; "
            f"{framed.get('frames_per_socket_per_s', '-')} messages per socket per s, "
            f"{framed.get('fragments_per_frame', '-')} fragments and "
            f"{framed.get('bytes_per_frame', '-')} bytes each "
            f"({framed.get('wire_bytes_per_frame', '-')} on the wire; "
            f"{framed.get('wire_kbytes_per_socket_per_s', '-')} kB per socket per s)"
        )
    for worker, figures in d.get("commit_to_socket_ms_by_worker", {}).items():
        sockets = main_phase.get("sockets_per_worker", {}).get(worker, "?")
        print(f"{main_phase['label']}, worker {worker} ({sockets} sockets): {figures}")
    for name, x in (("under traffic", polls[0]), ("idle", polls[1])):
        if x:
            print(
                f"long-poll {name}: votes {x['vote_http']}, answers {x['poll_answers']}; after "
                f"the vote's response {x['all']['poll_after_vote_response_ms']}"
            )
    t = report["targets"]
    print(
        f"\nTargets: commit->socket p95 <= 250 ms: "
        f"{'met' if t['commit_to_socket_p95_met'] else 'NOT met'} "
        f"({t['commit_to_socket_p95_ms']} ms); no fragment lost: {t['no_fragment_lost']}; "
        f"live path CPU <= 1/4 of the decisions': {'met' if t['live_cpu_met'] else 'NOT met'} "
        f"({t['live_cpu_to_decisions']}); "
        f"rate reached: {t['rate_reached']}; long-poll within 1 s of the vote: "
        f"{'met' if t['long_poll_met'] else 'NOT met'} (max {worst} ms, {failed} votes failed)"
    )


def versions(redis_version: str) -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": sys.version.split()[0], "redis-server": redis_version}
    for name in (
        "django",
        "channels",
        "channels-redis",
        "redis",
        "uvicorn",
        "uvloop",
        "websockets",
        "celery",
        "psycopg",
        "httpx",
    ):
        try:
            out[name] = version(name)
        except Exception:  # reported, not fatal
            out[name] = "missing"
    return out


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, about a minute")
    parser.add_argument("--rate", type=float, default=200, help="actions per second")
    parser.add_argument("--seconds", type=float, default=30, help="each traffic run")
    parser.add_argument(
        "--sockets",
        help="socket counts, one run each (default 20,100; --quick 100); the baseline runs "
        "with 0 and 1 socket are always added",
    )
    parser.add_argument("--reviewers", type=int, help="default: the most sockets")
    parser.add_argument(
        "--window", type=int, help="LIVE_BATCH_WINDOW_MS for the server (default: its own)"
    )
    parser.add_argument(
        "--polls", type=int, default=20, help="votes during a last run of traffic (0: none)"
    )
    parser.add_argument("--idle-polls", type=int, default=30, help="long-polls afterwards")
    parser.add_argument("--pool", type=int, default=20, help="DB_POOL_MAX")
    parser.add_argument(
        "--quiet-wait", type=float, default=120, help="seconds to wait for a quiet machine"
    )
    parser.add_argument(
        "--max-other", type=float, default=0.25, help="cores busy that count as quiet"
    )
    parser.add_argument("--email", action="store_true", help="the team's email channel on")
    parser.add_argument(
        "--no-deflate",
        action="store_true",
        help="sockets without permessage-deflate (browsers ask for it)",
    )
    parser.add_argument(
        "--ws",
        default=WS_PROTOCOL,
        help="uvicorn's --ws (default: the Procfile's; auto: uvicorn's own, with context takeover)",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--setup-only", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--socket-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.setup_only is not None:
        print("BENCH_JSON " + json.dumps(setup_data(args.setup_only, args.email)))
        return
    if args.socket_client or args.drive:
        import uvloop

        if args.socket_client:
            uvloop.run(socket_client())
        else:
            token = os.environ["BENCH_TOKEN"]
            uvloop.run(drive(args.drive, token, args.rate, args.seconds, args.tag, Path(args.out)))
        return

    if args.quick:
        args.seconds, args.polls, args.idle_polls = 10, 6, 6
        args.quiet_wait = min(args.quiet_wait, 10)
    asked = args.sockets or ("100" if args.quick else "20,100")
    args.socket_counts = sorted({0, 1, *(int(n) for n in asked.split(","))})
    args.reviewers = args.reviewers or max(args.socket_counts)
    if max(args.socket_counts) > args.reviewers:
        sys.exit("more sockets than reviewers")
    # Ctrl-C and SIGTERM raise KeyboardInterrupt wherever the script is (asyncio's own
    # Ctrl-C handling only cancels the main task, which a library may swallow).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="oversight-live-"))
    bench = Bench(args, work)
    try:
        bench.start()
        assert bench.server
        report: dict[str, Any] = {
            **report_head("bench/live.py"),
            "versions": versions(bench.redis.version()),
            "postgres": bench.pg.settings(),
            "server": {
                "command": " ".join(bench.server.command).replace(
                    str(VENV_BIN) + "/", ".venv/bin/"
                ),
                "loaded": bench.server.runtime_parts(),
                "db_pool_max": args.pool,
            },
            "setup": {k: v for k, v in bench.setup.items() if k != "token"},
            "held_share": 1 / HELD_EVERY,
            "python_speed_us_start": python_speed(),
        }
        report |= asyncio.run(run_all(bench, args))
        report["server"]["memory_after"] = bench.server.memory()
        report["server"]["log_problems"] = bench.server.errors_logged()
        with bench.pg.connect() as conn:
            report["actions_by_status"] = dict(
                conn.execute("SELECT status, count(*) FROM gateway_action GROUP BY 1").fetchall()
            )
            report["notifications"] = conn.execute(
                "SELECT count(*) FROM notifications_notification"
            ).fetchone()[0]
        report["seconds_total"] = round(time.monotonic() - began, 1)
        summarise(report, args)
        report["live_path_cpu"] = live_path_cpu(report["phases"])
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            variant = "-no-deflate" if args.no_deflate else ""
            variant += "" if args.ws == WS_PROTOCOL else f"-ws-{args.ws.rsplit(':', 1)[-1]}"
            path = RESULTS / f"live-{report['date']}{variant}.json"
            path.write_text(json.dumps(report, indent=1) + "\n")
            say(f"wrote {path.relative_to(ROOT)} ({report['seconds_total']} s in all)")
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    finally:
        bench.stop()
        if args.keep:
            say(f"kept {work} (logs, the load generator's and sockets' records)")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
