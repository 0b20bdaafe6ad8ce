"""bench/paced.py: requests at a fixed, even rate, latency counted from when each was due."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import paced


async def _server(slow_every: int, delay: float) -> tuple[asyncio.Server, str]:
    """Answers {"id": n, "status": "allowed"}; every slow_every-th request after delay s."""
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            length = paced._LENGTH.search(head)
            if length:
                await reader.readexactly(int(length[1]))
            count += 1
            if count % slow_every == 0:
                await asyncio.sleep(delay)
            body = json.dumps({"id": count, "status": "allowed"}).encode()
            writer.write(
                b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@contextmanager
def _collector_held_off() -> Iterator[None]:
    """No garbage collection in this process while the load runs. In a test worker that has
    run many tests before this one, the heap is large, and one full collection can stall
    the event loop for a good part of the second the load lasts: a request sent late
    because of that says nothing about the generator."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_every_request_is_sent_on_time_and_a_slow_answer_holds_none_back() -> None:
    """A request held back by a slow answer would be sent up to the slow answer's delay
    late; the bound is a quarter of it, so that it tells that apart from the scheduling
    noise of a busy test worker (tens of milliseconds)."""
    slow = 0.4

    async def run() -> dict:
        server, url = await _server(slow_every=10, delay=slow)
        async with server:
            host = url.removeprefix("http://")
            request = paced.decide_request(host, "token")
            return await paced.drive(url, request, rate=200, seconds=1, connections=2)

    with _collector_held_off():
        data = asyncio.run(run())
    load = paced.summary(data, 200)
    assert load["requests"] == 200 and not load["errors"]
    assert load["http_statuses"] == {"201": 200} and load["answers"] == {"allowed": 200}
    # More connections were opened, none waited for a slow answer.
    assert load["sent_late_ms"]["p99"] < slow * 1000 / 4
    assert load["sent_rps"] > 150
    assert slow * 1000 <= load["latency_ms"]["max"] < slow * 2000  # the slow ones, from due
    assert load["latency_ms"]["p50"] < 50


def test_a_request_is_a_valid_http_post_with_a_new_charge_each_time() -> None:
    request = paced.decide_request("127.0.0.1:1", "secret")
    first, second = request(0), request(1)
    head, body = first.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /api/v1/actions HTTP/1.1\r\nHost: 127.0.0.1:1\r\n")
    assert b"Authorization: Bearer secret" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body)["resource"] != json.loads(second.split(b"\r\n\r\n", 1)[1])["resource"]
