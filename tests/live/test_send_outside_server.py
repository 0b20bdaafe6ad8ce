"""Outside the ASGI server (a Celery worker, a command), live sends run on one event loop
per process, kept for its life: the channel layer keeps its connections (a new loop per
send opened a new Redis connection each time)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from asgiref.sync import async_to_sync

import oversight.celery  # noqa: F401 - its task_postrun handler
from oversight.live import groups, publish


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


def test_a_burst_outside_the_server_leaves_as_one_message_sent_by_the_end_of_the_task(
    settings: Any,
) -> None:
    """A Celery task (the rewind's runner, say) that publishes a row per action: the
    rows of one window go as one message per group, in order, and the end of the task
    (Celery's task_postrun, oversight/celery.py) sends what still waits."""
    from celery.signals import task_postrun
    from channels.layers import get_channel_layer

    settings.LIVE_BATCH_WINDOW_MS = 60_000  # nothing leaves by its window in this test
    layer = get_channel_layer()
    group = groups.agent_feed(987654)

    def task() -> None:  # publishes a row per action, on a thread without a loop
        for n in range(50):
            publish.send(group, html=f"<tr id='r{n}'></tr>", audience="feed", agent_ids=[987654])
        task_postrun.send(sender=None)  # as a worker does after each task

    async def scenario() -> list[dict[str, Any]]:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            await asyncio.to_thread(task)
            got = [await asyncio.wait_for(layer.receive(channel), 5)]
            try:
                while True:
                    got.append(await asyncio.wait_for(layer.receive(channel), 0.3))
            except TimeoutError:
                return got
        finally:
            await layer.group_discard(group, channel)

    messages = async_to_sync(scenario)()
    assert len(messages) == 1
    html = "".join(part[3] for part in messages[0]["parts"])
    assert html == "".join(f"<tr id='r{n}'></tr>" for n in range(50))
