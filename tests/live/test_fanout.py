"""One channel per process for the live groups (oversight/live/fanout.py), as sockets of
the real application use it over the suite's channel layer: every socket in a group gets
each of the group's messages once and in order, sockets that leave stop getting them,
and the process's channel follows its sockets' groups."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from oversight.agents.services import agent_access_grant
from oversight.live import batches, groups
from oversight.live.fanout import local_groups
from tests.conftest import SYSTEM
from tests.live.sockets import ORIGIN, connect, live_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

QUIET = 0.3


def _batch(group: str, html: str) -> dict[str, Any]:
    fragment = batches.Fragment.of(group, html=html, audience="everyone", agent_ids=())
    [(_group, message)] = batches.messages([fragment])
    return message


def test_every_socket_of_a_group_gets_each_message_once_in_order(
    owner: Any, reviewer: Any, agent: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    cookies = [session_cookie(owner), session_cookie(reviewer), session_cookie(owner)]
    feed = groups.agent_feed(agent.pk)

    async def scenario() -> tuple[list[list[str]], list[str], bool, bool]:
        layer = get_channel_layer()
        sockets = [live_socket(ORIGIN, cookie) for cookie in cookies]
        for socket in sockets:
            assert (await connect(socket))[0]
        here = local_groups()
        in_feed = len(here.members[feed])
        for i in range(20):
            await layer.group_send(feed, _batch(feed, f'<div id="m{i}"></div>'))
        got = [[await s.receive_from(timeout=3) for _ in range(20)] for s in sockets]
        assert all([await s.receive_nothing(timeout=QUIET) for s in sockets])

        # One leaves: the others still hear the group, the one that left does not.
        await sockets[0].disconnect()
        await layer.group_send(feed, _batch(feed, '<div id="after"></div>'))
        after = [await s.receive_from(timeout=3) for s in sockets[1:]]
        for socket in sockets[1:]:
            await socket.disconnect()
        # Nobody left: the process's channel left its groups and stopped reading.
        stopped = here.channel is None and not here.members and here._reader is None
        return got, after, in_feed == 3, stopped

    got, after, all_three_joined, stopped = async_to_sync(scenario)()
    expected = [f'<div id="m{i}"></div>' for i in range(20)]
    assert got == [expected, expected, expected]
    assert after == ['<div id="after"></div>'] * 2
    assert all_three_joined
    assert stopped


def test_a_socket_that_reconnects_after_everyone_left_hears_the_group_again(
    owner: Any, agent: Any
) -> None:
    cookie = session_cookie(owner)
    feed = groups.agent_feed(agent.pk)

    async def scenario() -> str:
        layer = get_channel_layer()
        first = live_socket(ORIGIN, cookie)
        assert (await connect(first))[0]
        await first.disconnect()
        again = live_socket(ORIGIN, cookie)
        assert (await connect(again))[0]
        await layer.group_send(feed, _batch(feed, '<div id="again"></div>'))
        received = await again.receive_from(timeout=3)
        await again.disconnect()
        return received

    assert async_to_sync(scenario)() == '<div id="again"></div>'
