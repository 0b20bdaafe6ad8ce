"""Access granted while a queue is open: the held actions already waiting arrive at once;
access revoked: they leave."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from oversight.accounts.services import team_reviewer_add
from oversight.agents.services import agent_access_grant, agent_access_revoke, token_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund
from tests.live.sockets import NEW_ITEM, ORIGIN, connect, in_thread, live_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)
QUIET = 0.3


@pytest.fixture
def waiting(agent: Any) -> Any:
    """A refund already held (its team has a standby reviewer), before anyone else joins."""
    grant_refunds(agent)
    hold_large_refunds(agent)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    return decide(token, refund(900))


def test_a_grant_brings_the_held_actions_to_the_open_queue_and_a_revocation_takes_them(
    reviewer: Any, outsider: Any, agent: Any, waiting: Any
) -> None:
    cookie, other = session_cookie(reviewer), session_cookie(outsider)

    async def scenario() -> tuple[str, str, bool]:
        socket = live_socket(ORIGIN, cookie, path="/ws/live/?show=queue")
        bystander = live_socket(ORIGIN, other, path="/ws/live/?show=queue")
        assert (await connect(socket))[0] and (await connect(bystander))[0]
        await in_thread(
            agent_access_grant, actor=SYSTEM, agent=agent, user=reviewer, level="reviewer"
        )
        arrived = await socket.receive_from(timeout=3)
        await in_thread(agent_access_revoke, actor=SYSTEM, agent=agent, user=reviewer)
        left = await socket.receive_from(timeout=3)
        nothing = await bystander.receive_nothing(timeout=QUIET)
        await socket.disconnect()
        await bystander.disconnect()
        return arrived, left, nothing

    arrived, left, bystander_got_nothing = async_to_sync(scenario)()
    assert NEW_ITEM.findall(arrived) == [str(waiting.pk)]
    assert "Who may approve:" in arrived
    assert f'id="queue-{waiting.pk}" hx-swap-oob="delete"' in left
    assert bystander_got_nothing


def test_a_new_team_reviewer_sees_the_teams_held_actions_at_once(
    reviewer: Any, agent: Any, waiting: Any
) -> None:
    cookie = session_cookie(reviewer)

    async def scenario() -> str:
        socket = live_socket(ORIGIN, cookie, path="/ws/live/?show=queue")
        assert (await connect(socket))[0]
        await in_thread(team_reviewer_add, actor=SYSTEM, team=agent.team, user=reviewer)
        arrived = await socket.receive_from(timeout=3)
        await socket.disconnect()
        return arrived

    assert NEW_ITEM.findall(async_to_sync(scenario)()) == [str(waiting.pk)]
