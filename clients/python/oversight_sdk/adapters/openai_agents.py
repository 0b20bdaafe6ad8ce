"""The OpenAI Agents SDK: function tools that ask Oversight before they run
(`pip install "oversight-sdk[openai-agents]"`).

    from agents import Agent, function_tool
    from oversight_sdk import AsyncOversight
    from oversight_sdk.adapters import ToolAction
    from oversight_sdk.adapters.openai_agents import oversight_tools

    tools = oversight_tools(
        [refund],
        AsyncOversight(),
        actions={"refund": ToolAction("payments.refund", resource="stripe:charge/{charge}")},
    )
    agent = Agent(name="support", tools=tools)

Each `FunctionTool` is copied with its invoke hook (`on_invoke_tool`, the SDK's own entry
point for running a tool, inside its tool guardrails and approval checks) wrapped in the
SDK's guard: allowed, the tool runs with the params as approved (a reviewer's edits
applied) and its output is reported as the after-state; held, the call waits up to
`timeout` seconds; otherwise the tool does not run and the model gets the reason as the
tool's output. The tool's own `needs_approval`, guardrails and error handling still apply.
Only function tools can be guarded (hosted tools run at OpenAI); anything else is refused
with a TypeError rather than left unguarded.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents import FunctionTool
from agents.tool_context import ToolContext

from ..aio import AsyncOversight
from ._tools import (
    DEFAULT_TIMEOUT,
    Refusal,
    ToolAction,
    default_action,
    refusal,
    resolve,
    run_guarded_async,
)


def oversight_tool(
    tool: FunctionTool,
    client: AsyncOversight,
    *,
    action: ToolAction | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> FunctionTool:
    """A copy of `tool` whose every call Oversight decides first."""
    if not isinstance(tool, FunctionTool):
        raise TypeError(f"only function tools can be guarded, not {type(tool).__name__}")
    rule = action or default_action(tool.name)
    invoke_original = tool.on_invoke_tool

    async def invoke(ctx: ToolContext[Any], input_json: str) -> Any:
        try:
            arguments = json.loads(input_json or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("the arguments are not a JSON object")
        except ValueError as exc:
            return refusal(exc).text
        outcome = await run_guarded_async(
            client,
            rule,
            arguments,
            lambda args: invoke_original(ctx, json.dumps(args)),
            timeout=timeout,
            after=_after_state,
        )
        return outcome.text if isinstance(outcome, Refusal) else outcome

    guarded = copy.copy(tool)
    guarded.on_invoke_tool = invoke
    return guarded


def oversight_tools(
    tools: Sequence[FunctionTool],
    client: AsyncOversight,
    *,
    actions: Mapping[str, ToolAction] | None = None,
    default: Callable[[str], ToolAction] = default_action,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[FunctionTool]:
    """`oversight_tool` for each tool, its action from `actions` (else `default(name)`)."""
    return [
        oversight_tool(tool, client, action=resolve(actions, tool.name, default), timeout=timeout)
        for tool in tools
    ]


def _after_state(output: Any) -> Any:
    """The tool's output as JSON where it is JSON, else its text."""
    try:
        json.dumps(output)
    except (TypeError, ValueError):
        return str(output)
    return output
