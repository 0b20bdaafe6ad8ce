"""A held call's card follows its tool: when the tool's definition changes, open queues
get the card again without its Approve button (approvals/eligibility.py); once an owner
accepts the new definition, with it again."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from oversight.agents.models import ToolPin
from oversight.agents.services import agent_access_grant, token_create
from oversight.agents.tool_pins import tool_pin_accept, tool_pins_record
from oversight.audit.actors import Actor
from tests.conftest import SYSTEM
from tests.gateway.helpers import (
    decide,
    grant_refunds,
    hold_large_refunds,
    refund,
    refund_tool,
)
from tests.live.sockets import ORIGIN, connect, in_thread, live_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

CARD_UPDATE = 'hx-swap-oob="true" data-oob-if-present'


def test_an_open_queue_is_sent_the_card_again_when_its_tool_changes_and_is_accepted(
    reviewer: Any, owner: Any, agent: Any
) -> None:
    grant_refunds(agent)
    hold_large_refunds(agent)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge.")])
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    held = decide(token, refund(900))  # held by the rule, before the tool changed
    cookie = session_cookie(reviewer)

    def accept() -> None:
        pin = ToolPin.objects.get(agent=agent)
        tool_pin_accept(
            actor=Actor.for_user(owner), pin=pin, changed_hash=pin.changed_hash, user=owner
        )

    async def scenario() -> tuple[str, str]:
        socket = live_socket(ORIGIN, cookie, path="/ws/live/?show=queue")
        assert (await connect(socket))[0]
        await in_thread(tool_pins_record, agent=agent, tools=[refund_tool("Refund, and more.")])
        changed = await socket.receive_from(timeout=3)
        await in_thread(accept)
        accepted = await socket.receive_from(timeout=3)
        await socket.disconnect()
        return changed, accepted

    changed, accepted = async_to_sync(scenario)()
    card = f'id="queue-{held.pk}" {CARD_UPDATE}'
    assert card in changed
    assert 'value="approve"' not in changed and "data-tool-not-accepted" in changed
    assert card in accepted
    assert 'value="approve"' in accepted and "data-tool-not-accepted" not in accepted
