"""The OpenAI Agents SDK's guarded function tools, driven by a fake Model (as the SDK's
own tests do): one call to `refund`, then a final answer."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.openai_agents import oversight_tools

from ..harness import AsyncRecordingOversight, Seen, refund_effect

set_tracing_disabled(True)  # offline: no traces exported
REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")
WAIT = 60.0


def action_id_in(text: str) -> str | None:
    found = re.search(r"Oversight action ([0-9a-f-]{36})", text)
    return found.group(1) if found else None


class OneToolCallModel(Model):
    """Asks for one tool call, then answers with the tool's output it was given."""

    def __init__(self, tool_name: str, arguments: dict) -> None:
        self.tool_name, self.arguments = tool_name, arguments
        self.tool_output: Any = None

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any):
        outputs = [
            item.get("output")
            for item in (input if isinstance(input, list) else [])
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        ]
        if not outputs:
            call = ResponseFunctionToolCall(
                type="function_call",
                id="fc_1",
                call_id="call_1",
                name=self.tool_name,
                arguments=json.dumps(self.arguments),
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        self.tool_output = outputs[0]
        text = ResponseOutputText(type="output_text", text="done", annotations=[])
        message = ResponseOutputMessage(
            type="message", id="m_1", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the conformance driver does not stream")


class OpenAIAgentsDriver:
    name = "openai_agents"

    def call(self, *, url: str, token: str, arguments: dict) -> Seen:
        executed: list[dict] = []

        @function_tool
        def refund(charge: str, amount: int) -> dict:
            """Refund `amount` of a charge."""
            return refund_effect(executed, charge, amount)

        model = OneToolCallModel("refund", arguments)
        client = AsyncRecordingOversight(url, token)

        async def run() -> None:
            async with client:
                tools = oversight_tools([refund], client, actions={"refund": REFUND}, timeout=WAIT)
                await Runner.run(Agent(name="conformance", model=model, tools=tools), "refund")

        asyncio.run(run())
        text = str(model.tool_output)
        # Refused, or the tool's failure as the SDK's default failure function words it.
        refused = text.startswith(("Not run", "Dry run", "An error occurred"))
        return Seen(executed, text, refused, action_id_in(text) or client.last_asked())


DRIVER = OpenAIAgentsDriver()
