"""The Pydantic AI toolset wrapper, in a real agent run driven by Pydantic AI's own
FunctionModel, against the live server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic_ai import Agent, FunctionToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from oversight.gateway.models import Action
from oversight_sdk import AsyncOversight
from oversight_sdk.adapters.pydantic_ai import OversightToolset
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
