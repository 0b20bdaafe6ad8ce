"""An OpenAI Agents SDK agent whose tool calls Oversight decides, run offline with a fake
Model: `OVERSIGHT_URL=... OVERSIGHT_TOKEN=... python openai_agents_agent.py ch_1 10`.

Needs `pip install './clients/python[openai-agents]'` and an agent allowed `payments.refund`
on `stripe:charge/*` (docs/integrations/openai-agents.md).
"""

import asyncio
import json
import sys

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from oversight_sdk import AsyncOversight
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.openai_agents import oversight_tools


@function_tool
def refund(charge: str, amount: int) -> dict:
    """Refund `amount` of a charge."""
    print(f"refund ran: {charge} {amount}")
    return {"refunded": amount, "charge": charge}


class FakeModel(Model):
    """Stands in for a real model: calls `refund` once, then repeats what it was told."""

    def __init__(self, arguments: dict) -> None:
        self.arguments = arguments

    async def get_response(self, system_instructions, input, *args, **kwargs):
        told = [i["output"] for i in input if isinstance(i, dict) and "output" in i]
        if not told:
            call = ResponseFunctionToolCall(
                type="function_call",
                call_id="call_1",
                name="refund",
                arguments=json.dumps(self.arguments),
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = ResponseOutputText(
            type="output_text", text=f"the model was told: {told[0]}", annotations=[]
        )
        message = ResponseOutputMessage(
            type="message", id="m_1", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError


async def main(charge: str = "ch_1", amount: str = "10") -> None:
    set_tracing_disabled(True)  # offline: no traces sent to OpenAI
    async with AsyncOversight() as client:  # OVERSIGHT_URL, OVERSIGHT_TOKEN
        tools = oversight_tools(
            [refund],
            client,
            actions={"refund": ToolAction("payments.refund", resource="stripe:charge/{charge}")},
            timeout=120,  # seconds a held call waits for a person
        )
        model = FakeModel({"charge": charge, "amount": int(amount)})
        result = await Runner.run(Agent(name="support", model=model, tools=tools), "Refund")
        print(result.final_output)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
