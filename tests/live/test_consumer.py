"""The live websocket: who may connect, and who receives what."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from oversight.agents.services import agent_access_grant, agent_access_revoke, token_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund
from tests.live.sockets import ORIGIN, connect, in_thread, live_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)
QUIET = 0.3  # seconds to wait for a message that must not come


@pytest.fixture
def held_refund(agent: Any) -> Any:
    """Decide a refund that is held, for the refund bot; returns a function."""
    grant_refunds(agent)
    hold_large_refunds(agent)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")

    def decide_refund(amount: int = 900) -> Any:
        return decide(token, refund(amount))

    return decide_refund


def test_a_socket_without_a_session_is_closed() -> None:
    async def scenario() -> Any:
        socket = live_socket(ORIGIN)
        connected, code = await socket.connect()
        await socket.disconnect()
        return connected, code

    assert async_to_sync(scenario)() == (False, 4401)


def test_a_socket_from_a_foreign_origin_is_refused(owner: Any) -> None:
    cookie = session_cookie(owner)

    async def scenario() -> bool:
        socket = live_socket((b"origin", b"https://evil.example"), cookie)
        connected, _ = await socket.connect()
        await socket.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


def test_the_owner_sees_the_new_action_and_an_outsider_sees_nothing(
    owner: Any, outsider: Any, held_refund: Any
) -> None:
    owner_cookie, outsider_cookie = session_cookie(owner), session_cookie(outsider)

    async def scenario() -> tuple[str, bool]:
        mine, theirs = live_socket(ORIGIN, owner_cookie), live_socket(ORIGIN, outsider_cookie)
        assert (await connect(mine))[0] and (await connect(theirs))[0]
        action = await in_thread(held_refund)
        received = await mine.receive_from(timeout=3)
        nothing = await theirs.receive_nothing(timeout=QUIET)
        await mine.disconnect()
        await theirs.disconnect()
        return received.replace(str(action.pk), "ACTION"), nothing

    received, outsider_got_nothing = async_to_sync(scenario)()
    assert 'hx-swap-oob="afterbegin:#action-feed,' in received
    assert 'id="action-ACTION"' in received
    assert outsider_got_nothing


def test_a_granted_reviewer_gets_queue_items_until_access_is_revoked(
    reviewer: Any, agent: Any, held_refund: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    cookie = session_cookie(reviewer)

    async def scenario() -> tuple[list[str], str, bool]:
        socket = live_socket(ORIGIN, cookie)
        assert (await connect(socket))[0]
        action = await in_thread(held_refund)
        first = [await socket.receive_from(timeout=3), await socket.receive_from(timeout=3)]
        await in_thread(agent_access_revoke, actor=SYSTEM, agent=agent, user=reviewer)
        gone = await socket.receive_from(timeout=3)  # the held card leaves the queue
        assert f'id="queue-{action.pk}" hx-swap-oob="delete"' in gone
        await asyncio.sleep(0.3)  # the consumer re-reads its subscriptions
        await in_thread(held_refund)
        after_revoke = await socket.receive_nothing(timeout=QUIET)
        await socket.disconnect()
        return first, gone, after_revoke

    first, _gone, nothing_after_revoke = async_to_sync(scenario)()
    assert any('hx-swap-oob="beforeend:#approval-queue"' in message for message in first)
    assert nothing_after_revoke


def test_a_deactivated_users_socket_is_closed_on_the_next_permission_change(
    owner: Any, teammate: Any, agent: Any, reviewer: Any
) -> None:
    cookie = session_cookie(teammate)

    async def scenario() -> dict[str, Any]:
        socket = live_socket(ORIGIN, cookie)
        assert (await connect(socket))[0]
        teammate.is_active = False
        await in_thread(teammate.save)
        # any permission change makes every socket re-read what it may see
        await in_thread(
            agent_access_grant, actor=SYSTEM, agent=agent, user=reviewer, level="viewer"
        )
        closed = await socket.receive_output(timeout=3)
        return closed

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 4403}


def test_messages_from_the_browser_are_ignored(owner: Any) -> None:
    cookie = session_cookie(owner)

    async def scenario() -> bool:
        socket = live_socket(ORIGIN, cookie)
        assert (await connect(socket))[0]
        await socket.send_to(
            text_data='{"type": "live.fragment", "audience": "everyone", "html": "<b>x</b>"}'
        )
        nothing = await socket.receive_nothing(timeout=QUIET)
        await socket.disconnect()
        return nothing

    assert async_to_sync(scenario)() is True
