#!/usr/bin/env python
"""What oversight-mcp adds to an allowed MCP tool call, against calling the same MCP
server directly, in the same run, at a fixed rate.

Usage (a PostgreSQL database it may migrate and fill; loopback only):

    DATABASE_URL=postgres://oversight_runtime@127.0.0.1:55500/oversight_bench \\
    DATABASE_OWNER_URL=postgres://oversight_owner@127.0.0.1:55500/oversight_bench \\
        .venv/bin/python bench/mcp_proxy.py               # 3 alternated rounds of 10 s

What it does, all on 127.0.0.1:

1. Migrates the database (as its owner) and, through the services, creates a team, an
   owner, the refund bot with a grant for mcp.payments.refund on stripe:charge/* and a
   production token.
2. Serves Oversight as in production (`uvicorn oversight.asgi:application`, DEBUG off,
   one worker) and starts three MCP client sessions, over stdio (or with `--transport
   http`, over streamable HTTP, the proxy fronting the server with --upstream/--listen):
   - **direct**: the payments MCP server (clients/python/tests/mcp_payments_server.py);
   - **proxied**: the same server behind `oversight-mcp` (a second process of it);
   - **decision**: no MCP at all, the SDK's `AsyncOversight.ask` for the same action, as
     the proxy asks it (timed to the answer; the outcome report follows untimed, as the
     proxy sends it after the caller has the result): the decision's own share.
3. After a warm-up, calls `refund` (a new charge each call, so each is a new action) on
   each at --rate calls/s, evenly spaced and open loop (latency from when the call was
   due), for --seconds, in --rounds alternated rounds (direct, proxied, decision). The
   calls are paced and timed on uvloop unless `--loop asyncio`: asyncio's own loop wakes
   from a sleep up to a millisecond late, which cancels out of the added latency but not
   out of the decision's share.
4. Prints p50 and p99 of each, the proxy's added latency (proxied minus direct, per
   percentile) and the decision's share of it, and writes bench/results/mcp-proxy-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAYMENTS = ROOT / "clients" / "python" / "tests" / "mcp_payments_server.py"
REFUND = "mcp.payments.refund"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    """Production settings: DEBUG off, no Redis, no periodic jobs in the web server."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "oversight.settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench-mcp-proxy-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "PERIODIC_IN_SERVER": "0",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        **extra,
    }


def setup_data() -> dict[str, str]:
    """In a subprocess (--setup-only): the agent, its grant and a production token."""
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import django

    django.setup()
    from decide import refund_agent_create  # the refund bot of bench/decide.py

    from oversight.agents.models import Agent
    from oversight.agents.services import token_create
    from oversight.audit.actors import Actor
    from oversight.policy.models import Grant
    from oversight.policy.services import policy_object_create

    actor = Actor.system("bench")
    agent = Agent.objects.filter(grants__action=REFUND).first()  # from an earlier run
    if agent is None:
        agent = refund_agent_create(actor)
        policy_object_create(
            actor=actor, obj=Grant(agent=agent, action=REFUND, resource="stripe:charge/*")
        )
    return {"token": token_create(actor=actor, agent=agent, environment="production")[1]}


def prepare() -> str:
    env = server_env()
    owner = os.environ.get("DATABASE_OWNER_URL")
    migrate = [sys.executable, "manage.py", "migrate", "--noinput"]
    if owner:
        env["DATABASE_OWNER_URL"] = owner
        migrate += ["--database", "owner"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603
    done = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--setup-only"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["token"]


def serve() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "oversight.asgi:application"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT, env=server_env())  # noqa: S603
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


async def paced(
    call: Callable[[int], Awaitable[bool]], *, start: int, rate: float, seconds: float
) -> dict[str, Any]:
    """Call `call(i)` at `rate` per second, evenly spaced, open loop; latency in ms from
    when each call was due. `call` returns whether it succeeded."""
    count = int(rate * seconds)
    latencies: list[float] = [0.0] * count
    failures = 0
    began = time.perf_counter()

    async def one(n: int) -> None:
        nonlocal failures
        due = began + n / rate
        if not await call(start + n):
            failures += 1
        latencies[n] = (time.perf_counter() - due) * 1000

    tasks = []
    for n in range(count):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return {"latencies_ms": latencies, "failures": failures}


def _run(coroutine: Coroutine[Any, Any, Any], loop: str) -> Any:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": round(cut[49], 3), "p99": round(cut[98], 3), "n": len(ordered)}


@contextmanager
def mcp_targets(base: str, token: str, transport: str) -> Iterator[tuple[Any, Any]]:
    """What the direct and the proxied MCP client sessions connect to: over stdio, the
    commands they spawn; over http, the URLs of the payments server and of the proxy
    fronting it (both started here, and stopped after)."""
    from mcp.client.stdio import StdioServerParameters

    tmp = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    payments = [str(PAYMENTS), "--log", str(tmp / "refunds.jsonl")]
    proxy_args = ["-m", "oversight_sdk.mcp.cli", "--resource", "refund=stripe:charge/{charge}"]
    env = {"OVERSIGHT_URL": base, "OVERSIGHT_TOKEN": token}
    if transport == "stdio":
        yield (
            StdioServerParameters(command=sys.executable, args=payments),
            StdioServerParameters(
                command=sys.executable,
                args=[*proxy_args, "--", sys.executable, *payments],
                env=env,
            ),
        )
        return
    upstream, proxy = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    port = upstream.rsplit(":", 1)[1]
    processes = [subprocess.Popen([sys.executable, *payments, "--http", port])]  # noqa: S603
    try:
        wait_for(f"http://{upstream}/mcp")
        command = [*proxy_args, "--upstream", f"http://{upstream}/mcp", "--listen", proxy]
        processes.append(
            subprocess.Popen([sys.executable, *command], env={**os.environ, **env})  # noqa: S603
        )
        wait_for(f"http://{proxy}/mcp")
        yield f"http://{upstream}/mcp", f"http://{proxy}/mcp"
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=20)


def wait_for(url: str) -> None:
    """Until something answers HTTP at `url` (an MCP endpoint refuses a bare GET)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered at {url}")


async def measure(base: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    from mcp.client.client import Client

    from oversight_sdk import AsyncOversight

    results: dict[str, list[dict[str, Any]]] = {"direct": [], "proxied": [], "decision": []}
    with mcp_targets(base, token, args.transport) as (direct_target, proxied_target):
        async with (
            Client(direct_target) as direct,
            Client(proxied_target) as proxied,
            AsyncOversight(base, token) as oversight,
        ):
            return await _measured(direct, proxied, oversight, args, results)


async def _measured(
    direct: Any,
    proxied: Any,
    oversight: Any,
    args: argparse.Namespace,
    results: dict[str, list[dict[str, Any]]],
) -> dict[str, list[dict[str, Any]]]:
    """The rounds: direct, proxied and decision calls paced in turn (module docstring)."""
    tag = f"{time.time_ns():x}"

    async def direct_call(i: int) -> bool:
        result = await direct.call_tool("refund", {"charge": f"ch_d{tag}_{i}", "amount": 1})
        return not result.is_error

    async def proxied_call(i: int) -> bool:
        result = await proxied.call_tool("refund", {"charge": f"ch_p{tag}_{i}", "amount": 1})
        return not result.is_error

    reports: set[asyncio.Task[Any]] = set()

    async def decision_call(i: int) -> bool:
        # The decision as the proxy makes it: timed to the answer; the report follows
        # off the timed path, as the proxy sends it after the caller has the result.
        arguments = {"charge": f"ch_s{tag}_{i}", "amount": 1}
        resource = f"stripe:charge/{arguments['charge']}"
        decision = await oversight.ask(REFUND, resource, params=arguments, reports_outcome=True)
        if not decision.allowed:
            return False
        report = oversight.report(
            decision.id,
            "succeeded",
            after={"is_error": False, "text": "{}"},
            action=REFUND,
            resource=resource,
            params=arguments,
        )
        task = asyncio.create_task(report)
        reports.add(task)
        task.add_done_callback(reports.discard)
        return True

    calls = {"direct": direct_call, "proxied": proxied_call, "decision": decision_call}
    await proxied.list_tools()
    for call in calls.values():  # warm-up: connections, caches, compiled policy
        await paced(call, start=10**6, rate=args.rate, seconds=2)
    start = 0
    for _ in range(args.rounds):
        for name, call in calls.items():
            segment = await paced(call, start=start, rate=args.rate, seconds=args.seconds)
            results[name].append(segment)
            start += 10**5
    await asyncio.gather(*reports)
    return results


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name, segments in results.items():
        pooled = [v for s in segments for v in s["latencies_ms"]]
        summary[name] = {
            **percentiles(pooled),
            "failures": sum(s["failures"] for s in segments),
            "rounds": [percentiles(s["latencies_ms"]) for s in segments],
        }
    added = {p: round(summary["proxied"][p] - summary["direct"][p], 3) for p in ("p50", "p99")}
    summary["added"] = added
    summary["decision_share"] = {
        p: round(summary["decision"][p] / added[p], 3) if added[p] > 0 else None
        for p in ("p50", "p99")
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the event loop that paces and times the calls (default: %(default)s: "
        "asyncio's wakes from a sleep up to 1 ms late, which counts in every latency)",
    )
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="how the MCP sessions are reached (default: %(default)s)",
    )
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.setup_only:
        print(json.dumps(setup_data()))
        return
    if "DATABASE_URL" not in os.environ:
        sys.exit("Set DATABASE_URL (and DATABASE_OWNER_URL) to a PostgreSQL database to fill.")
    token = prepare()
    server, base = serve()
    try:
        results = _run(measure(base, token, args), args.loop)
    finally:
        server.terminate()
        server.wait(timeout=20)
    summary = summarize(results)
    report = {
        "benchmark": "mcp_proxy",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "rate": args.rate,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "client_loop": args.loop,
        "transport": args.transport,
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "summary": summary,
    }
    out = args.out or ROOT / "bench" / "results" / f"mcp-proxy-{dt.date.today()}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8} {'failures':>9}")
    for name in ("direct", "proxied", "decision"):
        row = summary[name]
        print(f"{name:10} {row['p50']:8.2f} {row['p99']:8.2f} {row['failures']:9d}")
    print(f"{'added':10} {summary['added']['p50']:8.2f} {summary['added']['p99']:8.2f}")
    print(f"decision's share of the added latency: {summary['decision_share']}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
