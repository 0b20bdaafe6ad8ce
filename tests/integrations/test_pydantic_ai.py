"""The Pydantic AI toolset wrapper, in a real agent run driven by Pydantic AI's own
FunctionModel, against the live server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic_ai import Agent, DeferredToolRequests, FunctionToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from oversight.gateway.models import Action
from oversight_sdk import AsyncOversight
from oversight_sdk.adapters.pydantic_ai import ACTION_ID, OversightToolset, oversight_decisions
from tests.integrations.conftest import ACTIONS, Refunds, finish, in_thread, vote

pytestmark = pytest.mark.postgres


def _model(arguments: dict[str, Any]) -> FunctionModel:
    """Calls `refund` once with `arguments`, then answers with what the tool returned."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [
            part
            for message in messages
            for part in message.parts
            if isinstance(part, ToolReturnPart)
        ]
        if not returns:
            return ModelResponse(parts=[ToolCallPart("refund", arguments, tool_call_id="c1")])
        return ModelResponse(parts=[TextPart(str(returns[0].content))])

    return FunctionModel(respond)


def _call(url: str, token: str, refunds: Refunds, **arguments: Any) -> str:
    async def refund(charge: str, amount: int) -> dict[str, Any]:
        """Refund `amount` of a charge."""
        return refunds(charge, amount)

    async def scenario() -> str:
        async with AsyncOversight(url, token, retries=0) as client:
            toolset = OversightToolset(
                FunctionToolset([refund]), client=client, actions=ACTIONS, timeout=20
            )
            agent = Agent(_model(arguments), toolsets=[toolset])
            return (await agent.run("refund it")).output

    return asyncio.run(scenario())


def test_an_allowed_call_runs_and_its_return_value_is_reported(
    live_url: str, token: str, refunds: Refunds
) -> None:
    answer = _call(live_url, token, refunds, charge="ch_1", amount=10)
    assert refunds.executed == [{"charge": "ch_1", "amount": 10}]
    assert "'refunded': 10" in answer
    action = Action.objects.get()
    assert (action.status, action.after) == ("succeeded", {"refunded": 10, "charge": "ch_1"})
    assert action.session_id  # the run's id


def test_a_denied_call_does_not_run_and_the_model_gets_the_reason(
    live_url: str, token: str, refunds: Refunds
) -> None:
    answer = _call(live_url, token, refunds, charge="ch_blocked", amount=10)
    assert refunds.executed == []
    assert "blocked charge" in answer
    assert Action.objects.get().status == "denied"


def test_a_held_call_runs_once_approved(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    thread, ended = in_thread(lambda: _call(live_url, token, refunds, charge="ch_2", amount=150))
    vote(approver, approve=True)
    finish(thread, ended)
    assert refunds.executed == [{"charge": "ch_2", "amount": 150}]
    assert Action.objects.get().status == "succeeded"


def test_a_rejected_call_does_not_run_and_the_model_gets_the_comment(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    thread, ended = in_thread(lambda: _call(live_url, token, refunds, charge="ch_3", amount=150))
    vote(approver, approve=False, comment="refund 50 at most")
    answer = finish(thread, ended)
    assert refunds.executed == []
    assert "refund 50 at most" in answer


def test_a_call_approved_with_edits_runs_the_edited_params(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    thread, ended = in_thread(lambda: _call(live_url, token, refunds, charge="ch_4", amount=150))
    vote(approver, approve=True, params={"charge": "ch_4", "amount": 120})
    answer = finish(thread, ended)
    assert refunds.executed == [{"charge": "ch_4", "amount": 120}]
    assert "'refunded': 120" in answer
    assert Action.objects.get().after == {"refunded": 120, "charge": "ch_4"}


def test_a_halted_agent_s_call_does_not_run(
    live_url: str, token: str, refunds: Refunds, halt: Any
) -> None:
    halt()
    answer = _call(live_url, token, refunds, charge="ch_5", amount=10)
    assert refunds.executed == [] and "kill switch" in answer


def test_a_staging_token_gets_a_dry_run(
    live_url: str, staging_token: str, refunds: Refunds
) -> None:
    answer = _call(live_url, staging_token, refunds, charge="ch_6", amount=10)
    assert refunds.executed == [] and "Dry run" in answer
    assert Action.objects.get().status == "dry_run"


def test_an_unreachable_oversight_runs_nothing(unreachable_url: str, refunds: Refunds) -> None:
    answer = _call(unreachable_url, "ovs_prod_x", refunds, charge="ch_7", amount=10)
    assert refunds.executed == [] and "could not decide" in answer


def _deferred_run(
    url: str, token: str, refunds: Refunds, decide: Callable[[], None], **arguments: Any
) -> tuple[Any, str]:
    """A run whose held call is deferred, a person deciding meanwhile, and the run resumed
    with Oversight's decision: (the first run's output, the resumed run's)."""

    async def refund(charge: str, amount: int) -> dict[str, Any]:
        """Refund `amount` of a charge."""
        return refunds(charge, amount)

    def agent(client: AsyncOversight) -> Agent[None, Any]:
        toolset = OversightToolset(
            FunctionToolset([refund]), client=client, actions=ACTIONS, timeout=0.5, defer=True
        )
        return Agent(_model(arguments), toolsets=[toolset], output_type=[str, DeferredToolRequests])

    async def first_run() -> Any:
        async with AsyncOversight(url, token) as client:
            return await agent(client).run("refund it")

    async def resume(first: Any) -> str:
        async with AsyncOversight(url, token) as client:
            results = await oversight_decisions(client, first.output, timeout=5)
            resumed = await agent(client).run(
                message_history=first.all_messages(), deferred_tool_results=results
            )
            return resumed.output

    first = asyncio.run(first_run())
    assert isinstance(first.output, DeferredToolRequests)
    decide()
    return first.output, asyncio.run(resume(first))


def test_a_long_hold_is_deferred_and_resumed_with_the_edited_params(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    def approve_with_edits() -> None:
        assert refunds.executed == []  # nothing ran while it was held
        vote(approver, approve=True, params={"charge": "ch_8", "amount": 120})

    requests, answer = _deferred_run(
        live_url, token, refunds, approve_with_edits, charge="ch_8", amount=150
    )
    [call] = requests.approvals
    action = Action.objects.get()
    assert requests.metadata[call.tool_call_id][ACTION_ID] == str(action.pk)
    assert refunds.executed == [{"charge": "ch_8", "amount": 120}]
    assert "'refunded': 120" in answer
    action.refresh_from_db()
    assert (action.status, action.after["refunded"]) == ("succeeded", 120)


def test_a_long_hold_rejected_meanwhile_resumes_with_the_comment(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    def reject() -> None:
        vote(approver, approve=False, comment="not this one")

    _, answer = _deferred_run(live_url, token, refunds, reject, charge="ch_9", amount=150)
    assert refunds.executed == []
    assert "not this one" in answer
    assert Action.objects.get().status == "rejected"
