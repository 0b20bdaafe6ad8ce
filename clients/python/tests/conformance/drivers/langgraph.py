"""The LangChain 1.x / LangGraph middleware, driven by LangChain's fake chat model."""

from __future__ import annotations

import re
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.langchain import OversightMiddleware

from ..harness import RecordingOversight, Seen, refund_effect

REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")
WAIT = 60.0


class _ToolCallingFakeModel(GenericFakeChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> _ToolCallingFakeModel:
        return self


def action_id_in(text: str) -> str | None:
    found = re.search(r"Oversight action ([0-9a-f-]{36})", text)
    return found.group(1) if found else None


class LangGraphDriver:
    name = "langgraph"

    def call(self, *, url: str, token: str, arguments: dict) -> Seen:
        executed: list[dict] = []

        @tool
        def refund(charge: str, amount: int) -> dict:
            """Refund `amount` of a charge."""
            return refund_effect(executed, charge, amount)

        model = _ToolCallingFakeModel(
            messages=iter(
                [
                    AIMessage("", tool_calls=[{"name": "refund", "args": arguments, "id": "c1"}]),
                    AIMessage("done"),
                ]
            )
        )
        with RecordingOversight(url, token) as client:
            middleware = OversightMiddleware(client, actions={"refund": REFUND}, timeout=WAIT)
            agent = create_agent(model, tools=[refund], middleware=[middleware])
            try:
                state = agent.invoke({"messages": [HumanMessage("refund it")]})
            except RuntimeError as exc:  # the tool raised, into the run
                return Seen(executed, str(exc), True, client.last_asked())
        [answer] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
        text = str(answer.content)
        found = action_id_in(text) or client.last_asked()
        return Seen(executed, text, answer.status == "error", found)


DRIVER = LangGraphDriver()
