#!/usr/bin/env python
"""An open-loop load generator: requests at a fixed rate, evenly spaced.

Request i is due at start + i/rate and is sent then on the longest idle of the
keep-alive connections (more are opened when none is idle), whatever happened to the
earlier ones. So a slow answer does not hold the next requests back, and a request's
latency is counted from when it was due, not from when it could be sent ("coordinated
omission" would otherwise hide the stalls). That is what "p99 at a fixed 500
requests/s" means; hey's fixed rate (-c 50 -q 10) is 50 workers firing together every
100 ms, which measures bursts of 50.

Used by bench/decide.py (decisions and /ping at 500/s) and bench/live.py (actions at
200/s). As a command, for the benchmarks' subprocesses:

    python bench/paced.py --url http://127.0.0.1:8000 --kind decide --token T \
        --rate 500 --seconds 20 --out result.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


async def read_body(reader: asyncio.StreamReader, headers: bytes) -> bytes:
    """A response body, with Content-Length or chunked."""
    length = _LENGTH.search(headers)
    if length:
        return await reader.readexactly(int(length[1]))
    chunks = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # no trailers
    return b"".join(chunks)


def post(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def get(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def drive(
    base: str,
    request: Callable[[int], bytes],
    rate: float,
    seconds: float,
    connections: int = 48,
) -> dict[str, Any]:
    """Send ``request(i)`` (the raw HTTP/1.1 request) for i in 0 .. rate*seconds - 1.

    Each row: [i, sent - due, answered - sent, status, answer's "id", answer's "status",
    sent - start] (seconds); errors are counted and their connection replaced."""
    host, port = base.removeprefix("http://").split(":")
    # Taken in turn (first in, first out), so the requests spread over all connections
    # and so over the server's workers, as they would from many clients.
    idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque(
        [await asyncio.open_connection(host, int(port)) for _ in range(connections)]
    )
    rows: list[list[Any]] = []
    errors: Counter[str] = Counter()

    async def one(i: int, due: float) -> None:
        conn = idle.popleft() if idle else await asyncio.open_connection(host, int(port))
        reader, writer = conn
        sent = time.monotonic()
        try:
            writer.write(request(i))
            headers = await reader.readuntil(b"\r\n\r\n")
            status = int(headers[9:12])
            answer = json.loads(await read_body(reader, headers) or b"{}")
            done = time.monotonic()
        except Exception as exc:  # counted; the connection is not reused
            errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
            writer.close()
            return
        answer = answer if isinstance(answer, dict) else {}
        rows.append(
            [
                i,
                sent - due,
                done - sent,
                status,
                answer.get("id"),
                answer.get("status"),
                sent - start,
            ]
        )
        idle.append(conn)

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.monotonic() + 0.1
    tasks = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for _, writer in idle:
        writer.close()
    return {
        "rows": rows,
        "errors": dict(errors),
        "seconds": elapsed,
        "cpu_s": usage.ru_utime + usage.ru_stime - cpu0,
    }


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest rank: the smallest value with at least pct % of the values at or below it."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def spread(values: list[float]) -> dict[str, float]:
    """Milliseconds: mean, p50, p90, p95, p99 and max of values in seconds."""
    ms = sorted(v * 1000 for v in values)
    if not ms:
        return {"n": 0}
    out = {"n": len(ms), "mean": round(sum(ms) / len(ms), 2)}
    for pct in (50, 90, 95, 99):
        out[f"p{pct}"] = round(percentile(ms, pct), 2)
    out["max"] = round(ms[-1], 2)
    return out


def summary(data: dict[str, Any], rate: float) -> dict[str, Any]:
    rows = data["rows"]
    sent = [r[6] for r in rows]
    return {
        "target_rps": rate,
        "requests": len(rows),
        "seconds": round(data["seconds"], 2),
        # sent over the scheduled window, and answered by the time the last answer came
        "sent_rps": round(len(rows) / (max(sent) - min(sent) + 1 / rate), 1) if rows else 0,
        "rps": round(len(rows) / data["seconds"], 1),
        "http_statuses": dict(Counter(str(r[3]) for r in rows)),
        "answers": dict(Counter(str(r[5]) for r in rows)),
        "errors": data["errors"],
        "latency_ms": spread([r[1] + r[2] for r in rows]),  # from when it was due
        "response_ms": spread([r[2] for r in rows]),
        "sent_late_ms": spread([r[1] for r in rows]),
        "generator_cpu_s": round(data["cpu_s"], 2),
    }


def decide_request(host: str, token: str) -> Callable[[int], bytes]:
    """A refund the decide benchmark's policy allows, on a new charge each time (as
    bench/wrk_post.lua sends)."""

    def request(i: int) -> bytes:
        charge = f"ch_paced_{i}"
        body = json.dumps(
            {
                "action": "payments.refund",
                "resource": f"stripe:charge/{charge}",
                "params": {"amount": 20 + i % 400, "charges": [charge], "currency": "usd"},
                "reason": "customer asked for a refund",
            },
            separators=(",", ":"),
        ).encode()
        return post(host, "/api/v1/actions", body, {"Authorization": f"Bearer {token}"})

    return request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["decide", "ping"], default="decide")
    parser.add_argument("--token", default="")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    host = args.url.removeprefix("http://")
    if args.kind == "ping":
        ping = get(host, "/ping")
        request: Callable[[int], bytes] = lambda i: ping  # noqa: E731
    else:
        request = decide_request(host, args.token)
    import uvloop

    data = uvloop.run(drive(args.url, request, args.rate, args.seconds))
    Path(args.out).write_text(json.dumps(data))


if __name__ == "__main__":
    main()
