"""The pure parts of bench/live.py: reading fragments, counting deliveries, chunked bodies."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from oversight.live import groups
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import live
import paced


async def _fragments(channel: str, count: int) -> list[tuple[str, str]]:
    """The next ``count`` messages on ``channel``, classified. (Cancelling a receive makes
    the Redis layer drop the channel, so no waiting for silence.)"""
    layer = get_channel_layer()

    async def take() -> list[tuple[str, str]]:
        return [live.classify((await layer.receive(channel))["html"]) for _ in range(count)]

    return await asyncio.wait_for(take(), 10)


@pytest.mark.django_db
def test_classify_reads_the_fragments_the_broadcasts_send(
    agent: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    grant_refunds(agent)
    hold_large_refunds(agent)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")

    def decide_two() -> tuple[Any, Any]:
        with django_capture_on_commit_callbacks(execute=True):
            return decide(token, refund(100)), decide(token, refund(900, charges=("ch_2",)))

    def vote(action: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            approval_vote(user=reviewer, action_id=action.pk, vote="approve")

    async def scenario() -> tuple[Any, Any, list[tuple[str, str]], list[tuple[str, str]]]:
        # One event loop throughout: the Redis layer's channels live in the loop that made them.
        layer = get_channel_layer()
        channel = await layer.new_channel()
        for group in (groups.agent_feed(agent.pk), groups.agent_queue(agent.pk)):
            await layer.group_add(group, channel)
        await asyncio.sleep(0.2)  # subscribed
        allowed, held = await sync_to_async(decide_two)()
        decided = await _fragments(channel, 3)
        await sync_to_async(vote)(held)
        return allowed, held, decided, await _fragments(channel, 2)

    allowed, held, decided, voted = async_to_sync(scenario)()
    assert decided == [
        ("feed-new", str(allowed.pk)),
        ("feed-new", str(held.pk)),
        ("queue-new", str(held.pk)),
    ]
    assert sorted(voted) == [("feed-update", str(held.pk)), ("queue-gone", str(held.pk))]
    assert live.classify("<div>a kill-switch banner</div>") == ("other", "")


def test_deliveries_count_what_each_socket_missed_and_time_from_commit() -> None:
    actions = {
        "a": {"commit": 100.0, "created": 99.9, "pending": False},
        "b": {"commit": 101.0, "created": 100.9, "pending": True},
    }
    records = [
        [0, 100.1, "feed-new", "a"],
        [0, 101.2, "feed-new", "b"],
        [0, 101.3, "queue-new", "b"],
        [1, 100.3, "feed-new", "a"],
        [1, 100.4, "feed-new", "a"],  # a duplicate
        [1, 101.4, "feed-new", "b"],  # socket 1 never gets b's queue item
        [1, 101.5, "feed-new", "someone else's"],
    ]
    found = live.deliveries(records, 2, actions, workers=[7, 8])
    assert found["expected_per_socket"] == {"feed": 2, "queue": 1}
    assert found["received_per_socket"] == [{"feed": 2, "queue": 1}, {"feed": 2, "queue": 0}]
    assert (found["missing"], found["duplicates"]) == (1, 1)
    assert found["other_messages"] == {"feed-new": 1}
    assert found["commit_to_socket_ms"]["n"] == 5  # the duplicate counts once
    assert found["commit_to_socket_ms"]["max"] == pytest.approx(400, abs=0.1)
    assert found["commit_to_first_socket_ms"]["max"] == pytest.approx(300, abs=0.1)
    assert found["first_to_last_socket_ms"]["max"] == pytest.approx(200, abs=0.1)
    assert found["commit_to_socket_ms_by_worker"]["8"]["n"] == 2


@pytest.mark.parametrize(
    ("head", "body"),
    [
        (b"HTTP/1.1 201 Created\r\ncontent-length: 7\r\n\r\n", b'{"a":1}'),
        (
            b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n",
            b'4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n',
        ),
    ],
)
def test_read_body_with_a_length_or_chunked(head: bytes, body: bytes) -> None:
    async def read() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(head + body + b"HTTP/1.1 next")
        headers = await reader.readuntil(b"\r\n\r\n")
        return await paced.read_body(reader, headers)

    assert asyncio.run(read()) == b'{"a":1}'
