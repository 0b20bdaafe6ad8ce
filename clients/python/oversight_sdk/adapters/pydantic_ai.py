"""Pydantic AI: a toolset wrapper that asks Oversight before each tool call
(`pip install './clients/python[pydantic-ai]'`).

    from pydantic_ai import Agent, FunctionToolset
    from oversight_sdk import AsyncOversight
    from oversight_sdk.adapters import ToolAction
    from oversight_sdk.adapters.pydantic_ai import OversightToolset

    tools = FunctionToolset([refund])
    guarded = OversightToolset(
        tools,
        client=AsyncOversight(),
        actions={"refund": ToolAction("payments.refund", resource="stripe:charge/{charge}")},
    )
    agent = Agent(model, toolsets=[guarded])

Allowed: the wrapped toolset's tool runs (with the params a reviewer approved, edited or
not) and its return value is reported as the after-state; when the approval edited the
call's arguments or came with a comment, the model is told so with the return value (a
`ToolReturn`'s content: "Oversight: Rita Reviewer approved this call with edited arguments
(amount: 150 -> 120), saying: ..."). Held: the call waits up to
`timeout` seconds for a person. Anything else: the tool does not run and the model gets
the reason as the tool's return value.

Long holds (`defer=True`): a call still held after `timeout` becomes a deferred tool call
(`ApprovalRequired`), so the run ends with `DeferredToolRequests` and the action stays
pending in Oversight. Later, `oversight_decisions` turns Oversight's decisions into the
`DeferredToolResults` to resume with; the resumed call comes back to the same action (by
its idempotency key) and runs as approved, a reviewer's edits applied, or not at all.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._extras import extra
from ..aio import AsyncOversight
from ..errors import ApprovalTimeout, not_permitted_class
from ._tools import (
    DEFAULT_TIMEOUT,
    Refusal,
    ToolAction,
    default_action,
    refusal,
    resolve,
    run_guarded_async,
)

with extra("pydantic-ai", __name__):
    from pydantic import TypeAdapter
    from pydantic_ai import (
        DeferredToolRequests,
        DeferredToolResults,
        RunContext,
        ToolApproved,
        ToolDenied,
    )
    from pydantic_ai.exceptions import ApprovalRequired
    from pydantic_ai.messages import ToolReturn
    from pydantic_ai.toolsets import AbstractToolset, WrapperToolset
    from pydantic_ai.toolsets.abstract import ToolsetTool

_JSON = TypeAdapter(Any)

# What a deferred call carries to the resumed run (DeferredToolRequests.metadata).
ACTION_ID = "oversight_action_id"
_KEY = "oversight_idempotency_key"
_SESSION = "oversight_session_id"


@dataclass
class OversightToolset(WrapperToolset[Any]):
    """`wrapped`'s tools, each call decided by Oversight first.

    `actions` names each tool's action and resource; other tools are asked for as
    `default(tool_name)`. The run's id is sent as the actions' session id. `defer`: see
    the module's docstring.
    """

    client: AsyncOversight = field(kw_only=True)
    actions: Mapping[str, ToolAction] = field(default_factory=dict, kw_only=True)
    default: Callable[[str], ToolAction] = field(default=default_action, kw_only=True)
    timeout: float = field(default=DEFAULT_TIMEOUT, kw_only=True)
    defer: bool = field(default=False, kw_only=True)

    async def call_tool(
        self,
        name: str,
        tool_args: dict[str, Any],
        ctx: RunContext[Any],
        tool: ToolsetTool[Any],
    ) -> Any:
        wrapped: AbstractToolset[Any] = self.wrapped
        resumed = ctx.tool_call_metadata if ctx.tool_call_approved else None
        if isinstance(resumed, dict) and resumed.get(_KEY):  # a call held earlier
            key, session_id = str(resumed[_KEY]), str(resumed.get(_SESSION) or "")
            key_is_own = False
        else:  # a key made for this call: a replay can only answer its own retry
            key = uuid.uuid4().hex if self.defer else None
            session_id = str(ctx.run_id or "")[:100]
            key_is_own = True
        outcome = await run_guarded_async(
            self.client,
            resolve(self.actions, name, self.default),
            tool_args,
            lambda args: wrapped.call_tool(name, args, ctx, tool),
            timeout=self.timeout,
            after=_after_state,
            noted=_with_note,
            session_id=session_id,
            idempotency_key=key,
            give_up=not self.defer,
            key_is_own=key_is_own,
        )
        if not isinstance(outcome, Refusal):
            return outcome
        if self.defer and isinstance(outcome.error, ApprovalTimeout):
            raise ApprovalRequired(
                metadata={ACTION_ID: outcome.action_id, _KEY: key, _SESSION: session_id}
            )
        return outcome.text


async def oversight_decisions(
    client: AsyncOversight, requests: DeferredToolRequests, *, timeout: float = 0
) -> DeferredToolResults:
    """The results to resume a run with, for its calls Oversight has decided (waiting up
    to `timeout` seconds for each that is still held). Calls still held are left out:
    ask again later for them. Approved calls resume as `ToolApproved()` (the toolset runs
    the params as approved); the others as `ToolDenied` with the reason."""
    results = DeferredToolResults()
    for call in requests.approvals:
        metadata = requests.metadata.get(call.tool_call_id) or {}
        action_id = metadata.get(ACTION_ID)
        if not action_id:
            continue  # not one of ours
        decision = await client.wait(action_id, timeout)
        if decision.pending:
            continue
        results.metadata[call.tool_call_id] = metadata
        if decision.allowed:
            results.approvals[call.tool_call_id] = ToolApproved()
        else:
            error = not_permitted_class(decision.status)(decision)
            results.approvals[call.tool_call_id] = ToolDenied(refusal(error).text)
    return results


def _with_note(result: Any, note: str) -> Any:
    """The return value with the approval's note as content the model gets with it
    (`ToolReturn`); a tool's own `ToolReturn` keeps its content, the note after it."""
    if not isinstance(result, ToolReturn):
        return ToolReturn(return_value=result, content=note)
    content = result.content
    if content is None:
        noted: Any = note
    elif isinstance(content, str):
        noted = [content, note]
    else:
        noted = [*content, note]
    return dataclasses.replace(result, content=noted)


def _after_state(result: Any) -> Any:
    """The tool's return value as JSON (pydantic's serialisation), else its text."""
    try:
        return _JSON.dump_python(result, mode="json")
    except Exception:
        return str(result)
