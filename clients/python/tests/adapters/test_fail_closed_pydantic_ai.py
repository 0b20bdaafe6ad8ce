"""The Pydantic AI toolset fails closed, offline: with no Oversight to ask, or a call it
cannot describe, the tool does not run and the model is told why (Pydantic AI's
FunctionModel)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sdk_extras

pytest.importorskip("pydantic_ai", reason=sdk_extras.reason("pydantic-ai"))

from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import FunctionToolset
from pydantic_ai.messages import ModelResponse as PydanticResponse
from pydantic_ai.messages import TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel

from oversight_sdk import AsyncOversight
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.pydantic_ai import OversightToolset

REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")
ARGUMENTS = {"charge": "ch_1", "amount": 10}


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
