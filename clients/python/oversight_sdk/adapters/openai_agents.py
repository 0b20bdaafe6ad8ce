"""The OpenAI Agents SDK: function tools that ask Oversight before they run
(`pip install './clients/python[openai-agents]'`).

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
applied) and its output is reported as the after-state, and the model's copy of it ends
with what the approval said beyond yes (the arguments edited, the reviewer's comment;
not for a tool with an output schema, whose output must stay that JSON); held, the call
waits up to `timeout` seconds; otherwise the tool does not run and the model gets the
reason as the tool's output. The tool's own guardrails and error handling still apply: a tool that
raises is reported `failed` with its error, and the model gets the message its
`failure_error_function` makes (the SDK's default one unless set). Only function
tools can be guarded (hosted tools run at OpenAI); anything else is refused with a
TypeError rather than left unguarded.

The session Oversight records (a canary draws sessions; a rewind may take one) is the
run's conversation as the SDK names it for its traces: `RunConfig(group_id=...)` ("a
chat thread ID"), else the run's trace. With tracing disabled there is neither: give
`OversightTools(..., session=...)`, a function of the run's context wrapper (your own
`context`, say) to the session's id.

Long holds (`OversightTools(..., defer=True)`): the tools' `needs_approval` hook asks
Oversight; a call still held after `timeout` interrupts the run (the SDK's own tool
approval) with the action left pending. Once a person has decided, `decide` approves or
rejects the run's interruptions as Oversight decided, and the resumed run's call comes
back to the same action (by its idempotency key) and runs as approved, or not at all.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._extras import extra
from .._schema import schema_validator
from ..aio import AsyncOversight
from ..errors import ApprovalTimeout, not_permitted_class
from ..guard import AsyncGuard
from ._tools import (
    DEFAULT_TIMEOUT,
    Refusal,
    ToolAction,
    check_call,
    default_action,
    refusal,
    resolve,
    run_guarded_async,
)

with extra("openai-agents", __name__):
    from agents import (
        FunctionTool,
        RunContextWrapper,
        ToolOutputFileContent,
        ToolOutputImage,
        ToolOutputText,
        get_current_trace,
    )
    from agents.result import RunResultBase
    from agents.run_state import RunState
    from agents.tool import (
        maybe_invoke_function_tool_failure_error_function,
        set_function_tool_failure_error_function,
    )
    from agents.tool_context import ToolContext


class OversightTools:
    """Guards function tools with one client; with `defer`, also remembers which calls it
    left held, to resolve the run's interruptions later (in this process)."""

    def __init__(
        self,
        client: AsyncOversight,
        *,
        actions: Mapping[str, ToolAction] | None = None,
        default: Callable[[str], ToolAction] = default_action,
        timeout: float = DEFAULT_TIMEOUT,
        defer: bool = False,
        session: Callable[[RunContextWrapper[Any]], str] | None = None,
    ) -> None:
        self.client = client
        self.actions = dict(actions or {})
        self.default = default
        self.timeout = timeout
        self.defer = defer
        self.session = session or traced_session
        # Held calls, by (call id, arguments): (idempotency key, action id).
        self._held: dict[tuple[str, str], tuple[str, str]] = {}

    def wrap(self, tools: Sequence[FunctionTool]) -> list[FunctionTool]:
        return [self.tool(tool) for tool in tools]

    def tool(self, tool: FunctionTool, action: ToolAction | None = None) -> FunctionTool:
        """A copy of `tool` whose every call Oversight decides first."""
        if not isinstance(tool, FunctionTool):
            raise TypeError(f"only function tools can be guarded, not {type(tool).__name__}")
        rule = action or resolve(self.actions, tool.name, self.default)
        raising = _raising(tool)
        schema = tool.params_json_schema
        validator = schema_validator(schema)

        def checked(input_json: str) -> dict[str, Any]:
            """The call's arguments, refused (ValueError) when they are not JSON or do not
            match the tool's schema (check_call), before anything is asked."""
            arguments = _arguments(input_json)
            check_call(rule, validator, schema, arguments)
            return arguments

        async def invoke(ctx: ToolContext[Any], input_json: str) -> Any:
            try:
                arguments = checked(input_json)
            except ValueError as exc:
                return refusal(exc).text
            held = self._held.pop((ctx.tool_call_id, _canonical(arguments)), None)
            try:
                outcome = await run_guarded_async(
                    self.client,
                    rule,
                    arguments,
                    lambda args: raising.on_invoke_tool(ctx, json.dumps(args)),
                    timeout=self.timeout,
                    after=_after_state,
                    noted=lambda output, note: _with_note(tool, output, note),
                    session_id=self._session_of(ctx),
                    idempotency_key=held[0] if held else None,
                    key_is_own=held is not None,  # by the approval hook, not run
                )
            except Exception as exc:  # the tool failed, and was reported failed
                return await _failure_answer(tool, ctx, exc)
            return outcome.text if isinstance(outcome, Refusal) else outcome

        guarded = copy.copy(tool)
        guarded.on_invoke_tool = invoke
        if self.defer:
            guarded.needs_approval = self._needs_approval(rule, validator, schema)
        return guarded

    def _needs_approval(self, rule: ToolAction, validator: Any, schema: Any) -> Any:
        async def held_after_waiting(
            ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str
        ) -> bool:
            """Ask and wait; True (interrupt the run) when the call is still held. Whatever
            the answer, the call's invoke comes back to this action by its key. Arguments
            the tool's schema refuses are not asked for: the invoke refuses them."""
            try:
                check_call(rule, validator, schema, dict(params))
            except ValueError:
                return False
            call = (call_id, _canonical(params))
            key = uuid.uuid4().hex
            # Not claimed here: the call runs (or not) in the invoke hook, which claims it.
            spec = rule.spec(
                timeout=self.timeout,
                session_id=self._session_of(ctx),
                idempotency_key=key,
                give_up=False,
                claim=False,
            )
            guard = AsyncGuard(self.client, spec, dict(params))
            self._held[call] = (key, "")
            try:
                # Its own task: the guard's "current guard" stays out of the run; the
                # call runs (or not) later, in the invoke hook, under a guard of its own.
                await asyncio.create_task(guard.__aenter__())
            except ApprovalTimeout as exc:
                self._held[call] = (key, exc.action_id)
                return True
            except Exception:
                return False  # the invoke hook asks again with the key: refused there
            return False

        return held_after_waiting

    def _session_of(self, ctx: RunContextWrapper[Any]) -> str:
        return str(self.session(ctx) or "")[:100]

    async def decide(self, result: RunResultBase, *, timeout: float = 0) -> RunState[Any]:
        """The run's state with each interruption this object caused approved or rejected
        as Oversight decided (waiting up to `timeout` seconds for each still held); resume
        with `Runner.run(agent, state)`. Calls still held stay interrupted."""
        state = result.to_state()
        for item in result.interruptions:
            try:
                call = (str(item.call_id), _canonical(_arguments(item.arguments or "")))
            except ValueError:
                continue
            held = self._held.get(call)
            if held is None or not held[1]:
                continue  # not one of ours
            decision = await self.client.wait(held[1], timeout)
            if decision.pending:
                continue
            if decision.allowed:
                state.approve(item)
            else:
                error = not_permitted_class(decision.status)(decision)
                state.reject(item, rejection_message=refusal(error).text)
        return state


def oversight_tool(
    tool: FunctionTool,
    client: AsyncOversight,
    *,
    action: ToolAction | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> FunctionTool:
    """A copy of `tool` whose every call Oversight decides first."""
    return OversightTools(client, timeout=timeout).tool(tool, action)


def oversight_tools(
    tools: Sequence[FunctionTool],
    client: AsyncOversight,
    *,
    actions: Mapping[str, ToolAction] | None = None,
    default: Callable[[str], ToolAction] = default_action,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[FunctionTool]:
    """`oversight_tool` for each tool, its action from `actions` (else `default(name)`)."""
    return OversightTools(client, actions=actions, default=default, timeout=timeout).wrap(tools)


def traced_session(ctx: RunContextWrapper[Any]) -> str:
    """The run's conversation as its trace names it (`RunConfig(group_id=...)`), else the
    trace itself (one run); "" with tracing disabled."""
    trace = get_current_trace()
    if trace is None or trace.trace_id == "no-op":
        return ""
    return str(getattr(trace, "group_id", None) or trace.trace_id)


def _raising(tool: FunctionTool) -> FunctionTool:
    """A copy of `tool` whose errors are raised, not turned into a message for the model
    (its `failure_error_function`): so the guard sees the tool fail and reports `failed`.
    The message is made after, as the tool would have made it (`_failure_answer`)."""
    inner = copy.copy(tool)  # its invoker is bound to the copy's failure settings
    set_function_tool_failure_error_function(inner, None)
    return inner


async def _failure_answer(tool: FunctionTool, ctx: ToolContext[Any], error: Exception) -> Any:
    """What the model gets for a tool that raised: the tool's own failure message (the
    SDK's default, or its `failure_error_function`), or, for a tool made with
    `failure_error_function=None`, the error raised into the run, as without Oversight."""
    answer = await maybe_invoke_function_tool_failure_error_function(
        function_tool=tool, context=ctx, error=error
    )
    if answer is None:
        raise error
    return answer


def _arguments(input_json: str) -> dict[str, Any]:
    arguments = json.loads(input_json or "{}")
    if not isinstance(arguments, dict):
        raise ValueError("the arguments are not a JSON object")
    return arguments


def _canonical(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, sort_keys=True, default=str)


def _after_state(output: Any) -> Any:
    """The tool's output as JSON where it is JSON, else its text."""
    try:
        json.dumps(output)
    except (TypeError, ValueError):
        return str(output)
    return output


_STRUCTURED = (ToolOutputText, ToolOutputImage, ToolOutputFileContent)
_STRUCTURED_TYPES = ("input_text", "input_image", "input_file")


def _with_note(tool: FunctionTool, output: Any, note: str) -> Any:
    """The output the model gets, with the approval's note after it: a text output gets it
    as its last line, structured items (text, image, file) one more text item, any other
    value its text (as the Agents SDK shows it) then the note. A tool with an output
    schema keeps its output: it must stay that JSON."""
    if tool.output_json_schema is not None:
        return output
    if isinstance(output, str):
        return f"{output}\n\n{note}" if output else note
    items = list(output) if isinstance(output, list | tuple) else [output]
    if items and all(_structured(item) for item in items):
        return [*items, ToolOutputText(text=note)]
    return f"{output}\n\n{note}"


def _structured(item: Any) -> bool:
    if isinstance(item, _STRUCTURED):
        return True
    return isinstance(item, Mapping) and item.get("type") in _STRUCTURED_TYPES
