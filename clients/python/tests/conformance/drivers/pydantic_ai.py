"""The Pydantic AI toolset wrapper, driven by Pydantic AI's FunctionModel."""

from __future__ import annotations

import asyncio
import re

from pydantic_ai import Agent, FunctionToolset
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.pydantic_ai import OversightToolset

from ..harness import AsyncRecordingOversight, Seen, refund_effect

REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")
WAIT = 60.0


def action_id_in(text: str) -> str | None:
    found = re.search(r"Oversight action ([0-9a-f-]{36})", text)
    return found.group(1) if found else None


class PydanticAIDriver:
    name = "pydantic_ai"

    def call(self, *, url: str, token: str, arguments: dict) -> Seen:
        executed: list[dict] = []

        async def refund(charge: str, amount: int) -> dict:
            """Refund `amount` of a charge."""
            return refund_effect(executed, charge, amount)

        shown: list[object] = []
        told: list[str] = []

        def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            returns = [
                part.content
                for message in messages
                for part in message.parts
                if isinstance(part, ToolReturnPart)
            ]
            if not returns:
                return ModelResponse(parts=[ToolCallPart("refund", arguments, tool_call_id="c1")])
            shown.extend(returns)
            # What came to the model with the tool's return (a ToolReturn's content).
            told.extend(
                str(part.content)
                for message in messages
                if isinstance(message, ModelRequest)
                and any(isinstance(part, ToolReturnPart) for part in message.parts)
                for part in message.parts
                if isinstance(part, UserPromptPart)
            )
            return ModelResponse(parts=[TextPart("done")])

        client = AsyncRecordingOversight(url, token)

        async def run() -> None:
            async with client:
                toolset = OversightToolset(
                    FunctionToolset([refund]),
                    client=client,
                    actions={"refund": REFUND},
                    timeout=WAIT,
                )
                await Agent(FunctionModel(respond), toolsets=[toolset]).run("refund it")

        try:
            asyncio.run(run())
        except RuntimeError as exc:  # the tool raised, into the run
            return Seen(executed, str(exc), True, client.last_asked())
        [answer] = shown
        # A refusal is the text the toolset returned in the tool's place.
        refused = isinstance(answer, str) and answer.startswith(("Not run", "Dry run"))
        text = "\n".join([answer if isinstance(answer, str) else repr(answer), *told])
        return Seen(executed, text, refused, action_id_in(text) or client.last_asked())


DRIVER = PydanticAIDriver()
