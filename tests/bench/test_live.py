"""The pure parts of bench/live.py: reading fragments, counting deliveries, chunked bodies."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from oversight.live import publish
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund
from tests.live.sockets import ORIGIN, connect, in_thread, live_socket, session_cookie

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import live
import paced


@pytest.mark.django_db(transaction=True)
def test_fragments_reads_what_a_reviewers_socket_receives(
    agent: Any, reviewer: Any, settings: Any
) -> None:
    """Frames from the real consumer, coalesced as in the server: a window's feed rows in
    one frame, its queue items in another; then a vote's update and removal."""
    settings.LIVE_BATCH_WINDOW_MS = 200
    grant_refunds(agent)
    hold_large_refunds(agent)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    cookie = session_cookie(reviewer)

    async def frames(socket: Any) -> list[str]:
        await asyncio.sleep(0.4)  # the window, and then some
        out = []
        while not await socket.receive_nothing(timeout=0.3):
            out.append(await socket.receive_from())
        return out

    async def scenario() -> tuple[Any, Any, list[str], list[str]]:
        socket = live_socket(ORIGIN, cookie)
        assert (await connect(socket))[0]
        publish.bind_event_loop()  # this loop coalesces, as the server's does
        allowed = await in_thread(decide, token, refund(100))
        held = await in_thread(decide, token, refund(900, charges=("ch_2",)))
        decided = await frames(socket)
        await in_thread(approval_vote, user=reviewer, action_id=held.pk, vote="approve")
        voted = await frames(socket)
        await socket.disconnect()
        return allowed, held, decided, voted

    allowed, held, decided, voted = async_to_sync(scenario)()

    assert [live.fragments(frame) for frame in decided] == [
        [("feed-new", str(allowed.pk)), ("feed-new", str(held.pk))],
        [("queue-new", str(held.pk))],
    ]
    assert [f for frame in voted for f in live.fragments(frame)] == [
        ("feed-update", str(held.pk)),
        ("queue-gone", str(held.pk)),
    ]
    assert live.fragments("<div>a kill-switch banner</div>") == [("other", "")]


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


def test_the_live_path_is_what_sockets_add_to_the_servers_cpu() -> None:
    def run(label: str, sockets: int, server: float) -> dict[str, Any]:
        return {"label": label, "sockets": sockets, "cpu": {"cores_busy": {"server": server}}}

    phases = [run("0-sockets", 0, 0.4), run("1-sockets", 1, 0.42), run("100-sockets", 100, 0.5)]
    assert live.live_path_cpu(phases) == {
        "1-sockets": {"decision_cores": 0.4, "live_path_cores": 0.02, "live_to_decisions": 0.05},
        "100-sockets": {"decision_cores": 0.4, "live_path_cores": 0.1, "live_to_decisions": 0.25},
    }
    assert live.live_path_cpu(phases[1:]) == {}  # no baseline, no figure


def test_framing_counts_messages_per_socket_per_second_and_what_they_carry() -> None:
    found = live.framing([30, 10], [30_000, 10_000], [6_000, 2_000], fragments=160, seconds=10)
    assert found == {
        "frames": 40,
        "frames_per_socket_per_s": 2.0,
        "fragments_per_frame": 4.0,
        "bytes_per_frame": 1000,
        "wire_bytes_per_frame": 200,
        "wire_kbytes_per_socket_per_s": 0.4,
    }


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
