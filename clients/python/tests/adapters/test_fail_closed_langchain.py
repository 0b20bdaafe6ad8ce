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


class _FakeModel(GenericFakeChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> _FakeModel:
        return self


def _call_refund(url: str, arguments: dict[str, Any]) -> tuple[list[Any], ToolMessage]:
    """The model calls `refund` once with `arguments` through the middleware asking `url`:
    what the tool ran with, and the answer the model got."""
    ran: list[Any] = []

    @tool
    def refund(charge: str, amount: int) -> str:
        """Refund."""
        ran.append(charge)
        return "refunded"

    call = {"name": "refund", "args": arguments, "id": "c1"}
    model = _FakeModel(messages=iter([AIMessage("", tool_calls=[call]), AIMessage("ok")]))
    with Oversight(url, "ovs_prod_x", retries=0) as client:
        middleware = OversightMiddleware(client, actions={"refund": REFUND})
        agent = create_agent(model, tools=[refund], middleware=[middleware])
        state = agent.invoke({"messages": [HumanMessage("refund")]})
    [answer] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    return ran, answer


def test_langchain_runs_nothing_without_oversight(nowhere: str) -> None:
    ran, answer = _call_refund(nowhere, ARGUMENTS)
    assert ran == []
    assert answer.status == "error" and "could not decide" in answer.content


def test_langchain_refuses_arguments_its_tool_would_refuse_without_asking(nowhere: str) -> None:
    """Not asked: with Oversight unreachable the answer would say it could not decide."""
    ran, answer = _call_refund(nowhere, {"charge": "ch_1", "amount": "a lot"})
    assert ran == [] and answer.status == "error"
    assert answer.content.startswith(
        "Not run: the arguments do not match the tool's input schema (amount: "
    ), answer.content


def test_langchain_asks_with_the_arguments_as_the_tool_reads_them() -> None:
    """A resource made of a coerced argument names the value the tool runs with: "07"
    for an integer id is 7, so `crm:contact/7`, as a forbid on it reads it."""
    from langgraph.prebuilt.tool_node import ToolCallRequest

    from oversight_sdk.adapters.langchain import as_the_tool_reads

    @tool
    def update(contact: int, note: str = "") -> str:
        """Update a contact."""
        return "ok"

    rule = ToolAction("crm.contact.update", resource="crm:contact/{contact}")
    call = {"name": "update", "args": {"contact": "07"}, "id": "c1"}
    request = ToolCallRequest(tool_call=call, tool=update, state={}, runtime=None)
    assert as_the_tool_reads(request, rule) == {"contact": 7}
    assert rule.spec(timeout=1).resource(**as_the_tool_reads(request, rule)) == "crm:contact/7"
    unknown = ToolCallRequest(tool_call=call, tool=None, state={}, runtime=None)
    assert as_the_tool_reads(unknown, rule) == {"contact": "07"}  # the node knows no schema
