"""Outside the ASGI server (a Celery worker, a command), live sends run on one event loop
per process, kept for its life: the channel layer keeps its connections (a new loop per
send opened a new Redis connection each time)."""

from __future__ import annotations

import asyncio
import os

import pytest

from oversight.live import publish


def test_sends_outside_the_server_share_one_event_loop_per_process() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def note() -> None:
        loops.append(asyncio.get_running_loop())

    publish._run(note)
    publish._run(note)
    assert len(loops) == 2 and loops[0] is loops[1]
    assert loops[0].is_running()

    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a forked process (a Celery worker's child) sends from its own loop
        try:
            publish._run(note)
            os.write(write, b"own" if loops[-1] is not loops[0] else b"shared")
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 16) == b"own"


def test_a_send_that_fails_raises_to_its_caller() -> None:
    async def broken() -> None:
        raise RuntimeError("the layer is down")

    with pytest.raises(RuntimeError, match="the layer is down"):
        publish._run(broken)
