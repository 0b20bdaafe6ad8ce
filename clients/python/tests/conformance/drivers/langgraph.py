"""The LangChain 1.x / LangGraph middleware, driven by LangChain's fake chat model."""

from __future__ import annotations

import re
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from oversight_sdk import Oversight
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.langchain import OversightMiddleware

from ..harness import Seen

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
            executed.append({"charge": charge, "amount": amount})
            return {"refunded": amount, "charge": charge}

        model = _ToolCallingFakeModel(
            messages=iter(
                [
                    AIMessage("", tool_calls=[{"name": "refund", "args": arguments, "id": "c1"}]),
                    AIMessage("done"),
                ]
            )
        )
        with Oversight(url, token) as client:
            middleware = OversightMiddleware(client, actions={"refund": REFUND}, timeout=WAIT)
            agent = create_agent(model, tools=[refund], middleware=[middleware])
            state = agent.invoke({"messages": [HumanMessage("refund it")]})
        [answer] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
        text = str(answer.content)
        return Seen(executed, text, answer.status == "error", action_id_in(text))


DRIVER = LangGraphDriver()
