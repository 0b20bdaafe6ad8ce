"""A Pydantic AI agent whose tool calls Oversight decides, run offline with Pydantic AI's
FunctionModel: `OVERSIGHT_URL=... OVERSIGHT_TOKEN=... python pydantic_ai_agent.py ch_1 10`.

Needs `pip install './clients/python[pydantic-ai]'` and an agent allowed `payments.refund`
on `stripe:charge/*` (docs/integrations/pydantic-ai.md).
"""

import asyncio
import sys

from pydantic_ai import Agent, FunctionToolset
from pydantic_ai.messages import (
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import FunctionModel

from oversight_sdk import AsyncOversight
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.pydantic_ai import OversightToolset


def refund(charge: str, amount: int) -> dict:
    """Refund `amount` of a charge."""
    print(f"refund ran: {charge} {amount}")
    return {"refunded": amount, "charge": charge}


def fake_model(arguments: dict) -> FunctionModel:
    """Stands in for a real model: calls `refund` once, then repeats what it was told."""

    def respond(messages, info):
        # After the prompt: the tool's answer, and what a person's approval said beyond yes
        # (an edit, a note), which Oversight's toolset adds as a user message.
        later = [p for m in messages[1:] for p in m.parts]
        told = [str(p.content) for p in later if isinstance(p, (ToolReturnPart, UserPromptPart))]
        if not told:
            return ModelResponse(parts=[ToolCallPart("refund", arguments)])
        return ModelResponse(parts=[TextPart(f"the model was told: {' / '.join(told)}")])

    return FunctionModel(respond)


async def main(charge: str = "ch_1", amount: str = "10") -> None:
    async with AsyncOversight() as client:  # OVERSIGHT_URL, OVERSIGHT_TOKEN
        tools = OversightToolset(
            FunctionToolset([refund]),
            client=client,
            actions={"refund": ToolAction("payments.refund", resource="stripe:charge/{charge}")},
            timeout=120,  # seconds a held call waits for a person
        )
        agent = Agent(fake_model({"charge": charge, "amount": int(amount)}), toolsets=[tools])
        print((await agent.run("Refund the customer")).output)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
