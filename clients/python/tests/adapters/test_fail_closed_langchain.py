"""The LangChain middleware fails closed, offline: with no Oversight to ask, the tool does
not run and the model is told why (LangChain's own fake chat model)."""

from __future__ import annotations

from typing import Any

import pytest
import sdk_extras

pytest.importorskip("langchain", reason=sdk_extras.reason("langchain"))

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from oversight_sdk import Oversight
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.langchain import OversightMiddleware

REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")
ARGUMENTS = {"charge": "ch_1", "amount": 10}


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
