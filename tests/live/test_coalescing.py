"""Coalesced live fragments, as a socket receives them from the real application.

The test's event loop plays the ASGI server's: it is bound as the loop the fragments are
coalesced on, and the changes are made in worker threads, as the server's decision
threads and views make them. The channel layer is the suite's (Redis on PostgreSQL runs).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from oversight.agents.services import agent_access_grant, token_create
from oversight.gateway import lifecycle
from oversight.gateway.models import Action
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from oversight.live import broadcasts, groups, publish
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund
from tests.live.sockets import (
    NEW_ITEM,
    NEW_ROW,
    ORIGIN,
    connect,
    in_thread,
    live_socket,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)

# A burst of eight rows takes about 25 ms to publish here, and far longer when the test
# shares two cores with other workers (300 ms split it in two there, twice this session).
WINDOW_MS = 1000
QUIET = 0.3  # seconds without a message that end a collection


@pytest.fixture
def window(settings: Any) -> float:
    """A window long enough that what a test publishes in a burst falls into one."""
    settings.LIVE_BATCH_WINDOW_MS = WINDOW_MS
    return WINDOW_MS / 1000


@pytest.fixture
def refund_token(agent: Any) -> Any:
    grant_refunds(agent)
    hold_large_refunds(agent)
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


def _decided(token: Any, amounts: list[int]) -> list[Action]:
    """Actions decided before any socket listens (their own broadcasts reach nobody)."""
    return [decide(token, refund(a, charges=(f"ch_{i}",))) for i, a in enumerate(amounts)]


async def _frames(socket: WebsocketCommunicator, wait: float) -> list[str]:
    """Every message that arrives within ``wait`` s and until none has come for QUIET s."""
    await asyncio.sleep(wait)
    frames = []
    while not await socket.receive_nothing(timeout=QUIET):
        frames.append(await socket.receive_from())
    return frames


def _published_in_a_worker_thread(fn: Callable[[], Any]) -> Any:
    """Bind this loop as the server's, then run ``fn`` in a thread (as a decision runs)."""
    publish.bind_event_loop()
    return in_thread(fn)


def test_a_window_reaches_a_socket_as_one_message_per_group_in_publish_order(
    reviewer: Any, agent: Any, other_agent: Any, refund_token: Any, window: float
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    agent_access_grant(actor=SYSTEM, agent=other_agent, user=reviewer, level="viewer")
    actions = _decided(refund_token, [100, 900, 100, 900, 100, 100])
    grant_refunds(other_agent)
    other_token = token_create(actor=SYSTEM, agent=other_agent, environment="staging")[0]
    others = _decided(other_token, [100, 100])
    cookie = session_cookie(reviewer)
    # The two agents' actions interleaved, as they might commit.
    order = [actions[0], others[0], *actions[1:4], others[1], *actions[4:]]

    def announce() -> None:
        for action in order:
            broadcasts.action_changed(action.pk, created=True)

    async def scenario() -> list[str]:
        socket = live_socket(ORIGIN, cookie)
        assert (await connect(socket))[0]
        await _published_in_a_worker_thread(announce)
        frames = await _frames(socket, window)
        await socket.disconnect()
        return frames

    frames = async_to_sync(scenario)()

    # One message per group, in the order each group was first published to.
    assert len(frames) == 3, frames
    agent_feed, other_feed, agent_queue = frames
    assert NEW_ROW.findall(agent_feed) == [str(a.pk) for a in actions]
    assert NEW_ROW.findall(other_feed) == [str(a.pk) for a in others]
    assert NEW_ITEM.findall(agent_queue) == [str(actions[1].pk), str(actions[3].pk)]


def test_windows_go_out_in_order_and_no_fragment_is_lost(
    owner: Any, agent: Any, settings: Any
) -> None:
    """Four threads publish 1,200 fragments to one group over many short windows: the
    socket gets every one, in the order they were published, in far fewer messages."""
    settings.LIVE_BATCH_WINDOW_MS = 10
    cookie = session_cookie(owner)
    published: list[int] = []
    lock = threading.Lock()  # makes the publish order of the four threads known

    def publisher(first: int) -> None:
        for n in range(first, first + 300):
            with lock:
                publish.send(
                    groups.agent_feed(agent.pk),
                    html=f'<div id="event-{n}"></div>',
                    audience="feed",
                    agent_ids=[agent.pk],
                )
                published.append(n)
            if n % 25 == 0:
                time.sleep(0.005)  # spread over windows

    async def scenario() -> tuple[list[str], float]:
        socket = live_socket(ORIGIN, cookie)
        assert (await connect(socket))[0]
        publish.bind_event_loop()
        started = time.monotonic()
        await asyncio.gather(*(asyncio.to_thread(publisher, k * 1000) for k in range(4)))
        elapsed = time.monotonic() - started
        frames = await _frames(socket, 0.1)
        await socket.disconnect()
        return frames, elapsed

    frames, elapsed = async_to_sync(scenario)()

    delivered = [int(n) for frame in frames for n in re.findall(r'id="event-(\d+)"', frame)]
    assert len(published) == 1200
    assert delivered == published
    # At most one message per window (a window opens with its first fragment), and one
    # more for what was published while the last one was being sent.
    assert len(frames) <= elapsed / 0.010 + 2, (len(frames), elapsed)
    assert len(frames) < 1200 / 4


def test_a_batch_for_everyone_is_filtered_per_fragment(
    owner: Any, outsider: Any, agent: Any, team: Any, window: float
) -> None:
    """A team's kill switch and the global one in one window share the everyone group's
    message; the outsider's socket forwards only the global banner."""
    owner_cookie, outsider_cookie = session_cookie(owner), session_cookie(outsider)

    def engage_both() -> None:
        killswitch_engage(actor=SYSTEM, target=parse_target(f"team:{team.slug}"), reason="team")
        killswitch_engage(actor=SYSTEM, target=parse_target("global"), reason="everyone")

    async def scenario() -> tuple[list[str], list[str]]:
        mine, theirs = live_socket(ORIGIN, owner_cookie), live_socket(ORIGIN, outsider_cookie)
        assert (await connect(mine))[0] and (await connect(theirs))[0]
        await _published_in_a_worker_thread(engage_both)
        got_mine = await _frames(mine, window)
        got_theirs = await _frames(theirs, 0)
        await mine.disconnect()
        await theirs.disconnect()
        return got_mine, got_theirs

    mine, theirs = async_to_sync(scenario)()

    assert len(mine) == 1, mine
    assert "team payments: team" in mine[0] and "everything: everyone" in mine[0]
    assert mine[0].index("team payments") < mine[0].index("everything")
    assert len(theirs) == 1, theirs
    assert "everything: everyone" in theirs[0]
    assert "team payments" not in theirs[0]


def test_an_action_created_then_cancelled_in_one_window_ends_up_cancelled(
    reviewer: Any, agent: Any, refund_token: Any, window: float
) -> None:
    """The creation and the update travel in one message per group; the update comes
    after the creation, in a frame of its own (a table row must not follow a <tbody> in
    one frame, see batches.parse_context), and the queue item comes and goes."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    cookie = session_cookie(reviewer)

    def decide_then_cancel() -> Action:
        action = decide(refund_token, refund(900))
        return lifecycle.action_cancel(token=refund_token, action_id=action.pk)

    async def scenario() -> tuple[Action, list[str]]:
        socket = live_socket(ORIGIN, cookie)
        assert (await connect(socket))[0]
        action = await _published_in_a_worker_thread(decide_then_cancel)
        frames = await _frames(socket, window)
        await socket.disconnect()
        return action, frames

    action, frames = async_to_sync(scenario)()

    assert action.status == "cancelled"
    assert len(frames) == 3, frames
    created, updated, queue = frames
    assert created.startswith('<tbody hx-swap-oob="afterbegin:#action-feed,')
    assert NEW_ROW.findall(created) == [str(action.pk)]
    assert updated.startswith(
        f'<tr id="action-{action.pk}" hx-swap-oob="true" data-oob-if-present data-rank="2">'
    )
    assert "Cancelled" in updated
    assert NEW_ITEM.findall(queue) == [str(action.pk)]
    gone = f'<article id="queue-{action.pk}" hx-swap-oob="delete" data-oob-if-present></article>'
    assert queue.index(f'id="queue-{action.pk}"') < queue.index(gone)


def test_a_fragment_in_the_previous_releases_format_is_still_checked(
    owner: Any, outsider: Any, agent: Any
) -> None:
    """Processes of the release before batching send one ``live.fragment`` per event
    while a deploy replaces them; the consumer still checks each."""
    owner_cookie, outsider_cookie = session_cookie(owner), session_cookie(outsider)

    async def scenario() -> tuple[str, bool]:
        mine, theirs = live_socket(ORIGIN, owner_cookie), live_socket(ORIGIN, outsider_cookie)
        assert (await connect(mine))[0] and (await connect(theirs))[0]
        await get_channel_layer().group_send(
            groups.EVERYONE,
            {
                "type": "live.fragment",
                "html": '<div id="old-style"></div>',
                "audience": "feed",
                "agent_ids": [agent.pk],
            },
        )
        received = await mine.receive_from(timeout=3)
        nothing = await theirs.receive_nothing(timeout=QUIET)
        await mine.disconnect()
        await theirs.disconnect()
        return received, nothing

    received, outsider_got_nothing = async_to_sync(scenario)()
    assert received == '<div id="old-style"></div>'
    assert outsider_got_nothing
