"""Timing requests against the real server: every answer with the seconds it took."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

BURST = 30  # decisions at once: well over the fast lane's threads (DECISION_THREADS, 3)
WITHIN = 2.0  # seconds: the longest any single answer may take when a dependency is down


def refund(n: int) -> dict[str, Any]:
    return {
        "action": "payments.refund",
        "resource": f"stripe:charge/ch_{n}",
        "params": {"amount": 10},
    }


@contextmanager
def no_collection() -> Iterator[None]:
    """The test's own garbage collector does not run while the server is timed. Late in a
    test run a full collection of this process took 0.3 s on an idle machine (378,000
    objects), more on a loaded one, and it stops every request being timed at once."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def timed_burst(
    url: str, headers: dict[str, str], bodies: list[dict[str, Any]]
) -> list[tuple[httpx.Response, float]]:
    """POST every body to /api/v1/actions at once."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    with no_collection():
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

            async def one(body: dict[str, Any]) -> tuple[httpx.Response, float]:
                started = time.monotonic()
                response = await client.post("/api/v1/actions", json=body, headers=headers)
                return response, time.monotonic() - started

            return await asyncio.gather(*(one(body) for body in bodies))


def timed_get(url: str) -> tuple[int, Any, float]:
    """(status, JSON body, seconds)."""
    with no_collection():
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        return status, json.loads(body), time.monotonic() - started


def report(what: str, seconds: list[float]) -> None:
    """Printed for the record (pytest -s)."""
    ordered = sorted(seconds)
    print(f"\n{what}: {len(ordered)} answers in {ordered[0]:.3f}s to {ordered[-1]:.3f}s")
