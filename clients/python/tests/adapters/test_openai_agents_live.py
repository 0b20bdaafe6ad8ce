"""The OpenAI Agents SDK's long holds against a live server: the run is interrupted through
the SDK's own tool approval while a person decides, and resumed as Oversight decided.

The OpenAI Agents SDK cannot share the server's environment (it requires websockets<17),
so this runs in the SDK's own environment, against the server and world the conformance
suite is given (OVERSIGHT_CONFORMANCE_WORLD: url, token, reviewer_token; see
tests/conformance/). A fake Model stands in for OpenAI, as in the SDK's own tests."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

import httpx
import pytest
import sdk_extras

pytest.importorskip("agents", reason=sdk_extras.reason("openai-agents"))

from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled
from openai_fakes import OneCallModel

from oversight_sdk import AsyncOversight, current_guard
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.openai_agents import OversightTools

set_tracing_disabled(True)
REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    path = os.environ.get("OVERSIGHT_CONFORMANCE_WORLD")
    if not path:
        pytest.skip("needs a live server: OVERSIGHT_CONFORMANCE_WORLD (see tests/conformance)")
    with open(path) as world_file:
        return json.load(world_file)


def _vote(world: dict[str, Any], charge: str, body: dict[str, Any]) -> None:
    """The reviewer votes through the approvals API on the held refund of `charge`."""
    headers = {"Authorization": f"Bearer {world['reviewer_token']}"}
    with httpx.Client(base_url=world["url"].rstrip("/") + "/api/v1", headers=headers) as api:
        for _ in range(100):
            held = [a for a in api.get("/approvals").json() if a["resource"].endswith(charge)]
            if held:
                seen = {"request_hash": held[0]["request_hash"]}  # the version listed
                api.post(
                    f"/approvals/{held[0]['id']}/vote", json={**body, **seen}
                ).raise_for_status()
                return
            time.sleep(0.1)
    raise AssertionError(f"no held refund of {charge}")


def _refund_tool() -> tuple[Any, list[dict[str, Any]]]:
    """A `refund` function tool, and the list its side effect appends to."""
    executed: list[dict[str, Any]] = []

    @function_tool
    def refund(charge: str, amount: int) -> dict:
        """Refund `amount` of a charge."""
        executed.append({"charge": charge, "amount": amount})
        return {"refunded": amount, "charge": charge}

    return refund, executed


def _deferred(world: dict[str, Any], charge: str, vote: dict[str, Any]) -> tuple[list, Any]:
    refund, executed = _refund_tool()
    model = OneCallModel({"charge": charge, "amount": 150})

    async def scenario() -> None:
        async with AsyncOversight(world["url"], world["token"]) as client:
            guarded = OversightTools(client, actions={"refund": REFUND}, timeout=0.5, defer=True)
            agent = Agent(name="support", model=model, tools=guarded.wrap([refund]))
            first = await Runner.run(agent, "refund")
            assert [item.name for item in first.interruptions] == ["refund"]
            assert executed == []
            await asyncio.to_thread(_vote, world, charge, vote)
            state = await guarded.decide(first, timeout=5)
            await Runner.run(agent, state)

    asyncio.run(scenario())
    return executed, model.told


def test_a_long_hold_interrupts_the_run_and_resumes_with_the_edited_params(
    world: dict[str, Any],
) -> None:
    charge = f"ch_{uuid.uuid4().hex[:8]}"
    edited = {"vote": "approve", "params": {"charge": charge, "amount": 120}}
    executed, told = _deferred(world, charge, edited)
    assert executed == [{"charge": charge, "amount": 120}]
    assert "120" in str(told[0])


def test_a_long_hold_rejected_meanwhile_is_rejected_with_the_comment(
    world: dict[str, Any],
) -> None:
    charge = f"ch_{uuid.uuid4().hex[:8]}"
    executed, told = _deferred(world, charge, {"vote": "deny", "comment": "not this one"})
    assert executed == []
    assert "not this one" in str(told[0])


def _failing(world: dict[str, Any], **tool_options: Any) -> tuple[Any, list[Any], Any]:
    """A refund whose side effect raises, guarded: (the action, what the model was told,
    what the run raised, if anything)."""
    ran_as: list[str] = []

    @function_tool(**tool_options)
    def refund(charge: str, amount: int) -> dict:
        """Refund `amount` of a charge."""
        guard = current_guard()
        ran_as.append(guard.action_id if guard else "")
        raise RuntimeError("card network unreachable")

    model = OneCallModel({"charge": f"ch_{uuid.uuid4().hex[:8]}", "amount": 10})

    async def scenario() -> tuple[Any, Any]:
        async with AsyncOversight(world["url"], world["token"]) as client:
            tools = OversightTools(client, actions={"refund": REFUND}).wrap([refund])
            try:
                await Runner.run(Agent(name="support", model=model, tools=tools), "refund")
            except Exception as exc:
                raised: Any = exc
            else:
                raised = None
            return await client.get(ran_as[0]), raised

    action, raised = asyncio.run(scenario())
    return action, model.told, raised


def test_a_tool_that_raises_is_reported_failed_and_the_model_gets_the_sdks_message(
    world: dict[str, Any],
) -> None:
    action, told, raised = _failing(world)
    assert raised is None
    assert action.status == "failed"
    assert "An error occurred while running the tool" in str(told[0])


def test_a_tool_that_raises_with_no_failure_function_fails_the_run_as_without_oversight(
    world: dict[str, Any],
) -> None:
    action, told, raised = _failing(world, failure_error_function=None)
    assert "card network unreachable" in str(raised)
    assert action.status == "failed"
    assert told == []


def _run_deferring(
    world: dict[str, Any], model: Any, refund: Any, vote: tuple[str, dict] | None = None
) -> Any:
    """One run with `defer=True` and the approval hook waiting up to 30 s; `vote`: the
    reviewer's (charge, body), cast from a thread meanwhile."""

    async def scenario() -> Any:
        async with AsyncOversight(world["url"], world["token"]) as client:
            guarded = OversightTools(client, actions={"refund": REFUND}, timeout=30, defer=True)
            agent = Agent(name="support", model=model, tools=guarded.wrap([refund]))
            voting = asyncio.create_task(asyncio.to_thread(_vote, world, *vote)) if vote else None
            result = await Runner.run(agent, "refund")
            if voting is not None:
                await voting
            return result

    return asyncio.run(scenario())


def test_with_defer_a_call_approved_while_it_waits_runs_once_without_interrupting(
    world: dict[str, Any],
) -> None:
    """The approval hook waits; approved meanwhile, the run goes on and the invoke hook
    runs the call (the hook only decides: the run is claimed where it happens)."""
    charge = f"ch_{uuid.uuid4().hex[:8]}"
    refund, executed = _refund_tool()
    model = OneCallModel({"charge": charge, "amount": 150})

    result = _run_deferring(world, model, refund, vote=(charge, {"vote": "approve"}))
    assert result.interruptions == []
    assert executed == [{"charge": charge, "amount": 150}]
    assert "150" in str(model.told[0])


def test_with_defer_an_allowed_call_runs_once(world: dict[str, Any]) -> None:
    """The approval hook decides (allowed at once, it does not interrupt) with a key of
    its own; the invoke hook asks again with that key, and runs the call: the replayed
    answer is the hook's, which ran nothing."""
    charge = f"ch_{uuid.uuid4().hex[:8]}"
    refund, executed = _refund_tool()
    model = OneCallModel({"charge": charge, "amount": 10})

    result = _run_deferring(world, model, refund)
    assert result.interruptions == []
    assert executed == [{"charge": charge, "amount": 10}]
    assert "10" in str(model.told[0]) and "Not run" not in str(model.told[0])


class SessionsAsked(AsyncOversight):
    """The SDK's async client, remembering the session each ask named (`ask` unchanged)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[str] = []

    async def ask(self, *args: Any, **kwargs: Any) -> Any:
        self.sessions.append(kwargs.get("session_id", ""))
        return await super().ask(*args, **kwargs)


@pytest.mark.parametrize("defer", [False, True], ids=["invoke", "defer"])
def test_the_session_is_the_runs_conversation(world: dict[str, Any], defer: bool) -> None:
    """Oversight records a session per conversation (a canary draws sessions, a rewind may
    take one): by default the run's trace group (`RunConfig(group_id=...)`, "a chat thread
    ID"), else its trace; with tracing disabled, none, unless `session=` maps the run's
    context to one. The approval hook (`defer`) names the same one as the invoke hook."""
    refund, executed = _refund_tool()

    async def run(client: SessionsAsked, tools: OversightTools, **options: Any) -> None:
        model = OneCallModel({"charge": f"ch_{uuid.uuid4().hex[:8]}", "amount": 5})
        agent = Agent(name="support", model=model, tools=tools.wrap([refund]))
        await Runner.run(agent, "refund", **options)

    async def scenario() -> list[str]:
        async with SessionsAsked(world["url"], world["token"]) as client:
            traced = OversightTools(client, actions={"refund": REFUND}, defer=defer)
            own = OversightTools(
                client,
                actions={"refund": REFUND},
                defer=defer,
                session=lambda ctx: ctx.context["conversation"],
            )
            await run(client, own, context={"conversation": "conv-7"})
            await run(client, traced)  # tracing disabled: no session
            set_tracing_disabled(False)  # no OPENAI_API_KEY here: nothing is exported
            try:
                await run(client, traced, run_config=RunConfig(group_id="thread-7"))
                await run(client, traced)
            finally:
                set_tracing_disabled(True)
            return client.sessions

    sessions = asyncio.run(scenario())
    per_run = 2 if defer else 1  # the approval hook asks, then the invoke hook
    runs = [sessions[i : i + per_run] for i in range(0, len(sessions), per_run)]
    assert len(runs) == 4 and all(len(set(run)) == 1 for run in runs), sessions
    (own, untraced, grouped, traced) = (run[0] for run in runs)
    assert (own, untraced, grouped) == ("conv-7", "", "thread-7")
    assert traced.startswith("trace_"), traced
    assert len(executed) == 4
