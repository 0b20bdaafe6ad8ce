"""The OpenAI Agents SDK's guarded tools fail closed, offline: with no Oversight to ask,
the tool does not run and the model is told why (a fake Model, as the SDK's own tests
use); a tool the adapter cannot guard is refused."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import sdk_extras

pytest.importorskip("agents", reason=sdk_extras.reason("openai-agents"))

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall

from oversight_sdk import AsyncOversight
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.openai_agents import oversight_tool, oversight_tools

set_tracing_disabled(True)  # offline: no traces exported
REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")
ARGUMENTS = {"charge": "ch_1", "amount": 10}


class OneCallModel(Model):
    """A fake Model, as the OpenAI Agents SDK's own tests use: one tool call, then text."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kw: Any):
        told = [i["output"] for i in input if isinstance(i, dict) and "output" in i]
        if told:
            self.told.extend(told)
            return ModelResponse(output=[], usage=Usage(), response_id=None)
        call = ResponseFunctionToolCall(
            type="function_call", call_id="c1", name="refund", arguments=json.dumps(ARGUMENTS)
        )
        return ModelResponse(output=[call], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def test_openai_agents_runs_nothing_without_oversight(nowhere: str) -> None:
    ran: list[Any] = []

    @function_tool
    def refund(charge: str, amount: int) -> str:
        """Refund."""
        ran.append(charge)
        return "refunded"

    model = OneCallModel()

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
