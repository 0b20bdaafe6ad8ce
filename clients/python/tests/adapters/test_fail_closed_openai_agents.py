"""The OpenAI Agents SDK's guarded tools fail closed, offline: with no Oversight to ask,
the tool does not run and the model is told why (a fake Model, as the SDK's own tests
use); a tool the adapter cannot guard is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sdk_extras

pytest.importorskip("agents", reason=sdk_extras.reason("openai-agents"))

from agents import Agent, Runner, function_tool, set_tracing_disabled
from openai_fakes import OneCallModel

from oversight_sdk import AsyncOversight
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.openai_agents import oversight_tool, oversight_tools

set_tracing_disabled(True)  # offline: no traces exported
REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")
ARGUMENTS = {"charge": "ch_1", "amount": 10}


def test_openai_agents_runs_nothing_without_oversight(nowhere: str) -> None:
    ran: list[Any] = []

    @function_tool
    def refund(charge: str, amount: int) -> str:
        """Refund."""
        ran.append(charge)
        return "refunded"

    model = OneCallModel(ARGUMENTS)

    async def run() -> None:
        async with AsyncOversight(nowhere, "ovs_prod_x", retries=0) as client:
            tools = oversight_tools([refund], client, actions={"refund": REFUND})
            await Runner.run(Agent(name="t", model=model, tools=tools), "refund")

    asyncio.run(run())
    assert ran == []
    assert "could not decide" in str(model.told[0])


def test_openai_agents_refuses_to_leave_a_tool_unguarded() -> None:
    with pytest.raises(TypeError, match="only function tools"):
        oversight_tool(object(), AsyncOversight("http://x", "t"))  # type: ignore[arg-type]
