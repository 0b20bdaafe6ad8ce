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


def test_openai_agents_refuses_arguments_its_schema_refuses_without_asking(
    nowhere: str,
) -> None:
    """Not asked (Oversight is unreachable: asking would say it could not decide): an
    argument of the wrong type, and a string or a float for the integer its resource is
    made of, which the SDK would read as 7."""
    import json

    from agents.tool_context import ToolContext

    from oversight_sdk.adapters.openai_agents import OversightTools

    ran: list[Any] = []

    @function_tool
    def update(contact: int, note: str) -> str:
        """Update a contact."""
        ran.append(contact)
        return "ok"

    rule = ToolAction("crm.contact.update", resource="crm:contact/{contact}")

    async def call(arguments: dict[str, Any]) -> str:
        async with AsyncOversight(nowhere, "ovs_prod_x", retries=0) as client:
            guarded = OversightTools(client).tool(update, rule)
            ctx = ToolContext(
                context=None, tool_name="update", tool_call_id="c1", tool_arguments="{}"
            )
            return await guarded.on_invoke_tool(ctx, json.dumps(arguments))

    said = asyncio.run(call({"contact": 7, "note": 5}))
    assert said.startswith(
        "Not run: the arguments do not match the tool's input schema ($.note: 5 is not of type"
    ), said
    for contact in ("07", 7.0):
        said = asyncio.run(call({"contact": contact, "note": ""}))
        assert said.startswith("Not run: the argument contact is "), said
        assert "not of the type the tool's schema gives it (integer)" in said
    assert "could not decide" in asyncio.run(call({"contact": 7, "note": ""}))  # asked
    assert ran == []
