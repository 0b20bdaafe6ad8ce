"""The LangChain 1.x middleware, in a real `create_agent` loop driven by LangChain's own
fake chat model, against the live server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from oversight.approvals.services import approval_vote
from oversight.gateway.models import Action
from oversight_sdk import AsyncOversight, Oversight
from oversight_sdk.adapters.langchain import OversightMiddleware
from tests.integrations.conftest import (
    ACTIONS,
    ApprovedWhileGivingUp,
    Refunds,
    finish,
    in_thread,
    vote,
)

pytestmark = pytest.mark.postgres
_SMALL = {"charge": "ch_1", "amount": 10}


class ToolCallingFakeModel(GenericFakeChatModel):
    """LangChain's fake chat model, accepting the tools an agent binds to it."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingFakeModel:
        return self


def _agent(
    middleware: OversightMiddleware,
    refunds: Refunds,
    checkpointer: Any = None,
    calls: list[dict[str, Any]] | None = None,
    **arguments: Any,
) -> Any:
    """An agent whose model makes one turn of tool calls (by default one call of
    `refund(**arguments)`), then says it is done."""
    calls = calls or [{"name": "refund", "args": arguments, "id": "call_1"}]
    model = ToolCallingFakeModel(
        messages=iter([AIMessage("", tool_calls=calls), AIMessage("done")])
    )

    @tool
    def refund(charge: str, amount: int) -> dict[str, Any]:
        """Refund `amount` of a charge."""
        return refunds(charge, amount)

    return create_agent(model, tools=[refund], middleware=[middleware], checkpointer=checkpointer)


def _call(url: str, token: str, refunds: Refunds, **arguments: Any) -> ToolMessage:
    with Oversight(url, token, retries=0, wait_timeout=20) as client:
        middleware = OversightMiddleware(client, actions=ACTIONS, timeout=20)
        state = _agent(middleware, refunds, **arguments).invoke(
            {"messages": [HumanMessage("refund it")]}
        )
    [answer] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    return answer


def test_an_allowed_call_runs_and_its_answer_is_reported(
    live_url: str, token: str, refunds: Refunds
) -> None:
    answer = _call(live_url, token, refunds, charge="ch_1", amount=10)
    assert refunds.executed == [{"charge": "ch_1", "amount": 10}]
    assert answer.status == "success" and '"refunded": 10' in answer.content
    action = Action.objects.get()
    assert (action.status, action.after) == ("succeeded", {"refunded": 10, "charge": "ch_1"})


def test_a_tool_error_the_graph_answers_with_is_reported_failed_in_its_words(
    live_url: str, token: str, refunds: Refunds
) -> None:
    """A tool whose errors LangChain turns into the model's answer (handle_tool_error):
    the call is reported failed, with the tool's words as its error."""
    model = ToolCallingFakeModel(
        messages=iter(
            [
                AIMessage("", tool_calls=[{"name": "refund", "args": _SMALL, "id": "c1"}]),
                AIMessage("done"),
            ]
        )
    )

    @tool
    def refund(charge: str, amount: int) -> dict[str, Any]:
        """Refund `amount` of a charge."""
        refunds(charge, amount)
        raise ToolException("card_declined: the charge is disputed")

    refund.handle_tool_error = True

    with Oversight(live_url, token, retries=0) as client:
        middleware = OversightMiddleware(client, actions=ACTIONS, timeout=20)
        agent = create_agent(model, tools=[refund], middleware=[middleware])
        state = agent.invoke({"messages": [HumanMessage("refund it")]})
    [answer] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert answer.status == "error" and "card_declined" in answer.content
    assert len(refunds.executed) == 1
    action = Action.objects.get()
    assert (action.status, action.error) == ("failed", "card_declined: the charge is disputed")


def test_a_denied_call_does_not_run_and_the_model_gets_the_reason(
    live_url: str, token: str, refunds: Refunds
) -> None:
    answer = _call(live_url, token, refunds, charge="ch_blocked", amount=10)
    assert refunds.executed == []
    assert answer.status == "error" and "blocked charge" in answer.content
    assert Action.objects.get().status == "denied"


def test_a_held_call_runs_once_approved(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    thread, ended = in_thread(lambda: _call(live_url, token, refunds, charge="ch_2", amount=150))
    vote(approver, approve=True)
    answer = finish(thread, ended)
    assert refunds.executed == [{"charge": "ch_2", "amount": 150}]
    assert answer.status == "success"
    assert Action.objects.get().status == "succeeded"


def test_a_rejected_call_does_not_run_and_the_model_gets_the_comment(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    thread, ended = in_thread(lambda: _call(live_url, token, refunds, charge="ch_3", amount=150))
    vote(approver, approve=False, comment="refund 50 at most")
    answer = finish(thread, ended)
    assert refunds.executed == []
    assert answer.status == "error"
    assert "Rita Reviewer rejected" in answer.content and "refund 50 at most" in answer.content


def test_a_call_approved_with_edits_runs_the_edited_params(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    thread, ended = in_thread(lambda: _call(live_url, token, refunds, charge="ch_4", amount=150))
    vote(approver, approve=True, params={"charge": "ch_4", "amount": 120})
    answer = finish(thread, ended)
    assert refunds.executed == [{"charge": "ch_4", "amount": 120}]
    assert '"refunded": 120' in answer.content
    action = Action.objects.get()
    assert (action.status, action.params["amount"], action.after["refunded"]) == (
        "succeeded",
        120,
        120,
    )


def test_a_halted_agent_s_call_does_not_run(
    live_url: str, token: str, refunds: Refunds, halt: Any
) -> None:
    halt()
    answer = _call(live_url, token, refunds, charge="ch_5", amount=10)
    assert refunds.executed == []
    assert answer.status == "error" and "kill switch" in answer.content


def test_a_staging_token_gets_a_dry_run(
    live_url: str, staging_token: str, refunds: Refunds
) -> None:
    answer = _call(live_url, staging_token, refunds, charge="ch_6", amount=10)
    assert refunds.executed == []
    assert "Dry run" in answer.content
    assert Action.objects.get().status == "dry_run"


def test_an_unreachable_oversight_runs_nothing(unreachable_url: str, refunds: Refunds) -> None:
    answer = _call(unreachable_url, "ovs_prod_x", refunds, charge="ch_7", amount=10)
    assert refunds.executed == []
    assert answer.status == "error" and "could not decide" in answer.content


def test_the_async_agent_is_guarded_too(live_url: str, token: str, refunds: Refunds) -> None:
    async def scenario() -> list[Any]:
        async with AsyncOversight(live_url, token) as client:
            middleware = OversightMiddleware(async_client=client, actions=ACTIONS)
            agent = _agent(middleware, refunds, charge="ch_blocked", amount=10)
            state = await agent.ainvoke({"messages": [HumanMessage("refund it")]})
        return [m for m in state["messages"] if isinstance(m, ToolMessage)]

    [answer] = asyncio.run(scenario())
    assert refunds.executed == [] and "blocked charge" in answer.content


def test_the_session_recorded_is_the_graphs_thread(
    live_url: str, token: str, refunds: Refunds
) -> None:
    """A thread is a conversation: Oversight records it as the session (a canary draws
    sessions, a rewind may take one), sync and async; a run without one has none."""
    config = {"configurable": {"thread_id": "thread-s"}}
    with Oversight(live_url, token) as client:
        middleware = OversightMiddleware(client, actions=ACTIONS)
        agent = _agent(middleware, refunds, checkpointer=InMemorySaver(), charge="ch_s", amount=5)
        agent.invoke({"messages": [HumanMessage("refund it")]}, config)
        _agent(middleware, refunds, charge="ch_n", amount=5).invoke(
            {"messages": [HumanMessage("refund it")]}
        )

    async def in_a_thread() -> None:
        async with AsyncOversight(live_url, token) as client:
            middleware = OversightMiddleware(async_client=client, actions=ACTIONS)
            agent = _agent(
                middleware, refunds, checkpointer=InMemorySaver(), charge="ch_a", amount=5
            )
            await agent.ainvoke({"messages": [HumanMessage("refund it")]}, config)

    asyncio.run(in_a_thread())
    sessions = dict(Action.objects.values_list("resource", "session_id"))
    assert sessions == {
        "stripe:charge/ch_s": "thread-s",
        "stripe:charge/ch_n": "",
        "stripe:charge/ch_a": "thread-s",
    }


def test_a_long_hold_interrupts_the_graph_and_resumes_as_decided(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    config = {"configurable": {"thread_id": "thread-1"}}
    with Oversight(live_url, token) as client:
        middleware = OversightMiddleware(client, actions=ACTIONS, timeout=0.5, interrupt=True)
        agent = _agent(middleware, refunds, checkpointer=InMemorySaver(), charge="ch_8", amount=150)
        first = agent.invoke({"messages": [HumanMessage("refund it")]}, config)
        [interruption] = first["__interrupt__"]
        action = Action.objects.get()
        assert interruption.value["oversight_action_id"] == str(action.pk)
        assert (action.status, refunds.executed) == ("pending", [])

        vote(approver, approve=True, params={"charge": "ch_8", "amount": 120})
        resumed = agent.invoke(Command(resume=True), config)

    [answer] = [m for m in resumed["messages"] if isinstance(m, ToolMessage)]
    assert refunds.executed == [{"charge": "ch_8", "amount": 120}]
    assert '"refunded": 120' in answer.content
    assert Action.objects.count() == 1  # the resumed call came back to the same action
    action.refresh_from_db()
    assert (action.status, action.after["refunded"]) == ("succeeded", 120)


class ReportsNeverArrive(httpx.HTTPTransport):
    """The network to Oversight, down for outcome reports: as an agent that ran the call
    and stopped before its report got through."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/result"):
            raise httpx.ConnectError("connection refused", request=request)
        return super().handle_request(request)


@pytest.mark.parametrize(
    ("reported", "told", "status"),
    [
        (True, "has run already", "succeeded"),
        # The first run made the call, but its outcome never reached Oversight: it may
        # have run, and its outcome is for a person to record.
        (False, "may already have run", "allowed"),
    ],
    ids=["reported", "never-reported"],
)
def test_a_tool_call_that_comes_back_runs_at_most_once(
    live_url: str, token: str, refunds: Refunds, reported: bool, told: str, status: str
) -> None:
    """With `interrupt`, one thread's tool call id is one action: the call coming back (a
    graph resumed again, a model repeating an id) finds it has run, or may have, and does
    not run again."""
    config = {"configurable": {"thread_id": "thread-2"}}
    answers = []
    transport = None if reported else ReportsNeverArrive()
    with Oversight(live_url, token, transport=transport, retries=1, backoff=0) as client:
        middleware = OversightMiddleware(client, actions=ACTIONS, interrupt=True)
        for _ in range(2):
            agent = _agent(
                middleware, refunds, checkpointer=InMemorySaver(), charge="ch_9", amount=10
            )
            state = agent.invoke({"messages": [HumanMessage("refund it")]}, config)
            answers += [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert refunds.executed == [{"charge": "ch_9", "amount": 10}]
    assert answers[0].status == "success"
    assert answers[1].status == "error" and told in answers[1].content
    assert Action.objects.get().status == status


def test_resumed_undecided_but_approved_as_it_is_withdrawn_the_call_runs(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    """The last moment: resumed, the call waits again, nobody has decided, and a person
    approves just before it is withdrawn. The approval wins and the call runs."""
    config = {"configurable": {"thread_id": "thread-3"}}
    with ApprovedWhileGivingUp(live_url, token, approver=approver) as client:
        middleware = OversightMiddleware(client, actions=ACTIONS, timeout=0.5, interrupt=True)
        agent = _agent(
            middleware, refunds, checkpointer=InMemorySaver(), charge="ch_10", amount=150
        )
        first = agent.invoke({"messages": [HumanMessage("refund it")]}, config)
        [interruption] = first["__interrupt__"]
        assert interruption.value["message"].startswith("Waiting for a person's approval")
        assert Action.objects.get().status == "pending"  # not withdrawn, as it says
        resumed = agent.invoke(Command(resume=True), config)
    [answer] = [m for m in resumed["messages"] if isinstance(m, ToolMessage)]
    assert refunds.executed == [{"charge": "ch_10", "amount": 150}]
    assert answer.status == "success"
    assert Action.objects.get().status == "succeeded"


def test_two_held_calls_in_one_turn_resume_together_and_each_runs_once(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    """LangGraph resumes several interrupts by their ids, as the docs show."""
    config = {"configurable": {"thread_id": "thread-4"}}
    calls = [
        {"name": "refund", "args": {"charge": f"ch_1{i}", "amount": 150}, "id": f"call_{i}"}
        for i in (1, 2)
    ]
    with Oversight(live_url, token) as client:
        middleware = OversightMiddleware(client, actions=ACTIONS, timeout=0.5, interrupt=True)
        agent = _agent(middleware, refunds, checkpointer=InMemorySaver(), calls=calls)
        state = agent.invoke({"messages": [HumanMessage("refund both")]}, config)
        assert len(state["__interrupt__"]) == 2
        for action in Action.objects.all():
            approval_vote(user=approver, action_id=action.pk, vote="approve")
        state = agent.invoke(Command(resume={i.id: True for i in state["__interrupt__"]}), config)
    answers = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert sorted(a.status for a in answers) == ["success", "success"]
    assert sorted(r["charge"] for r in refunds.executed) == ["ch_11", "ch_12"]
    assert sorted(Action.objects.values_list("status", flat=True)) == ["succeeded", "succeeded"]
