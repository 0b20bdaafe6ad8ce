"""Pydantic AI: a toolset wrapper that asks Oversight before each tool call
(`pip install "oversight-sdk[pydantic-ai]"`).

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
not) and its return value is reported as the after-state. Held: the call waits up to
`timeout` seconds for a person. Anything else: the tool does not run and the model gets
the reason as the tool's return value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai import RunContext
from pydantic_ai.toolsets import AbstractToolset, WrapperToolset
from pydantic_ai.toolsets.abstract import ToolsetTool

from ..aio import AsyncOversight
from ._tools import DEFAULT_TIMEOUT, Refusal, ToolAction, default_action, resolve, run_guarded_async

_JSON = TypeAdapter(Any)


@dataclass
class OversightToolset(WrapperToolset[Any]):
    """`wrapped`'s tools, each call decided by Oversight first.

    `actions` names each tool's action and resource; other tools are asked for as
    `default(tool_name)`. The run's id is sent as the actions' session id.
    """

    client: AsyncOversight = field(kw_only=True)
    actions: Mapping[str, ToolAction] = field(default_factory=dict, kw_only=True)
    default: Callable[[str], ToolAction] = field(default=default_action, kw_only=True)
    timeout: float = field(default=DEFAULT_TIMEOUT, kw_only=True)

    async def call_tool(
        self,
        name: str,
        tool_args: dict[str, Any],
        ctx: RunContext[Any],
        tool: ToolsetTool[Any],
    ) -> Any:
        wrapped: AbstractToolset[Any] = self.wrapped
        outcome = await run_guarded_async(
            self.client,
            resolve(self.actions, name, self.default),
            tool_args,
            lambda args: wrapped.call_tool(name, args, ctx, tool),
            timeout=self.timeout,
            after=_after_state,
            session_id=str(getattr(ctx, "run_id", "") or "")[:100],
        )
        if isinstance(outcome, Refusal):
            return outcome.text
        return outcome


def _after_state(result: Any) -> Any:
    """The tool's return value as JSON (pydantic's serialisation), else its text."""
    try:
        return _JSON.dump_python(result, mode="json")
    except Exception:
        return str(result)
