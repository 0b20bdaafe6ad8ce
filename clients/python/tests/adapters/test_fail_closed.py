"""Every adapter fails closed, offline: with no Oversight to ask, or a call it cannot
describe, the tool does not run and the model is told why. Runs in the SDK's own
environment (all extras, no server): each framework's own fake or test model, and an
Oversight URL nothing listens on."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from claude_agent_sdk import PermissionResultDeny, ToolPermissionContext
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from openai.types.responses import ResponseFunctionToolCall
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import FunctionToolset
from pydantic_ai.messages import ModelResponse as PydanticResponse
from pydantic_ai.messages import TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel

from oversight_sdk import AsyncOversight, Oversight
from oversight_sdk.adapters import ToolAction, default_action
from oversight_sdk.adapters.claude_agent import ClaudeOversight, claude_action
from oversight_sdk.adapters.langchain import OversightMiddleware
from oversight_sdk.adapters.openai_agents import oversight_tool, oversight_tools
from oversight_sdk.adapters.pydantic_ai import OversightToolset

set_tracing_disabled(True)  # offline: no traces exported
REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")
ARGUMENTS = {"charge": "ch_1", "amount": 10}


@pytest.fixture
def nowhere() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed again: nothing listens


def test_langchain_runs_nothing_without_oversight(nowhere: str) -> None:
    ran: list[Any] = []

    @tool
    def refund(charge: str, amount: int) -> str:
        """Refund."""
        ran.append(charge)
        return "refunded"

    class FakeModel(GenericFakeChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> FakeModel:
            return self

    call = {"name": "refund", "args": ARGUMENTS, "id": "c1"}
    model = FakeModel(messages=iter([AIMessage("", tool_calls=[call]), AIMessage("ok")]))
    with Oversight(nowhere, "ovs_prod_x", retries=0) as client:
        middleware = OversightMiddleware(client, actions={"refund": REFUND})
        agent = create_agent(model, tools=[refund], middleware=[middleware])
        state = agent.invoke({"messages": [HumanMessage("refund")]})
    [answer] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert ran == []
    assert answer.status == "error" and "could not decide" in answer.content


def test_pydantic_ai_runs_nothing_without_oversight_or_with_a_bad_template(nowhere: str) -> None:
    ran: list[Any] = []

    def refund(charge: str, amount: int) -> str:
        """Refund."""
        ran.append(charge)
        return "refunded"

    def respond(messages: list[Any], info: Any) -> PydanticResponse:
        told = [p.content for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        if not told:
            return PydanticResponse(parts=[ToolCallPart("refund", ARGUMENTS)])
        return PydanticResponse(parts=[TextPart(str(told[0]))])

    async def run(actions: dict[str, ToolAction]) -> str:
        async with AsyncOversight(nowhere, "ovs_prod_x", retries=0) as client:
            toolset = OversightToolset(FunctionToolset([refund]), client=client, actions=actions)
            return (
                await PydanticAgent(FunctionModel(respond), toolsets=[toolset]).run("go")
            ).output

    assert "could not decide" in asyncio.run(run({"refund": REFUND}))
    bad = {"refund": ToolAction("payments.refund", resource="stripe:charge/{missing}")}
    assert "could not be put to Oversight" in asyncio.run(run(bad))
    assert ran == []


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


def test_claude_denies_without_oversight(nowhere: str) -> None:
    async def run() -> Any:
        async with AsyncOversight(nowhere, "ovs_prod_x", retries=0) as client:
            oversight = ClaudeOversight(client)
            context = ToolPermissionContext(tool_use_id="toolu_1")
            return await oversight.can_use_tool("mcp__payments__refund", ARGUMENTS, context)

    denied = asyncio.run(run())
    assert isinstance(denied, PermissionResultDeny) and "could not decide" in denied.message


def test_tools_nobody_described_are_still_asked_for() -> None:
    assert (default_action("Send Email").action, default_action("Send Email").resource) == (
        "tool.send_email",
        "tool:send_email",
    )
    assert claude_action("mcp__payments__refund").action == "mcp.payments.refund"
    assert claude_action("Bash").resource == "claude:bash"
