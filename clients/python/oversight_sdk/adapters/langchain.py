"""LangChain 1.x agents and LangGraph: an agent middleware that asks Oversight before each
tool call (`pip install './clients/python[langchain]'`).

    from langchain.agents import create_agent
    from oversight_sdk import Oversight
    from oversight_sdk.adapters import ToolAction
    from oversight_sdk.adapters.langchain import OversightMiddleware

    oversight = OversightMiddleware(
        Oversight(),
        actions={"refund": ToolAction("payments.refund", resource="stripe:charge/{charge}")},
    )
    agent = create_agent(model, tools=[refund], middleware=[oversight])

Its `wrap_tool_call` / `awrap_tool_call` also fit a plain LangGraph `ToolNode`
(`ToolNode(tools, wrap_tool_call=oversight.wrap_tool_call)`).

Allowed: the tool runs (with the params a reviewer approved, edited or not) and its answer
is reported as the after-state; a tool answer with status "error" is reported failed. When
the approval edited the call's arguments or came with a comment, the model's `ToolMessage`
ends with a line saying so ("Oversight: Rita Reviewer approved this call with edited
arguments (amount: 150 -> 120), saying: ...").
Held: the call waits up to `timeout` seconds for a person. Anything else: the tool does
not run and the model gets a `ToolMessage` (status "error") saying why.

The session Oversight records (a canary draws sessions; a rewind may take one) is the
LangGraph thread (`configurable.thread_id`), when the run has one.

Long holds (`interrupt=True`, with a checkpointer and a thread id): a call still held
after `timeout` interrupts the graph (LangGraph's `interrupt`, its value
`{"oversight_action_id": ...}`) and the action stays pending. Resume the thread with
`Command(resume={i.id: True for i in state["__interrupt__"]})` (every call a turn left
waiting) once a person has decided: the call asks again with the same
idempotency key (from the thread id and the tool call id), so it comes back to the same
action, and runs as approved or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .._extras import extra
from .._schema import ArgumentsRefused, mismatch, schema_validator
from ..aio import AsyncOversight
from ..client import Oversight
from ..errors import ApprovalTimeout
from ._tools import (
    DEFAULT_TIMEOUT,
    Refusal,
    ToolAction,
    check_call,
    default_action,
    refusal,
    resolve,
    run_guarded,
    run_guarded_async,
)

with extra("langchain", __name__):
    from langchain.agents.middleware import AgentMiddleware
    from langchain_core.messages import ToolMessage
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.types import Command, interrupt
    from pydantic import BaseModel, ValidationError  # langchain-core's own

Answer = ToolMessage | Command[Any]


class OversightMiddleware(AgentMiddleware):
    """Every tool call decided by Oversight first.

    Give `client` (an `Oversight`) for `invoke`/`stream`, `async_client` (an
    `AsyncOversight`) for `ainvoke`/`astream`, or both. `actions` names each tool's
    action and resource; other tools are asked for as `default(tool_name)`.
    """

    def __init__(
        self,
        client: Oversight | None = None,
        *,
        async_client: AsyncOversight | None = None,
        actions: Mapping[str, ToolAction] | None = None,
        default: Callable[[str], ToolAction] = default_action,
        timeout: float = DEFAULT_TIMEOUT,
        interrupt: bool = False,
    ) -> None:
        super().__init__()
        if client is None and async_client is None:
            raise ValueError("OversightMiddleware needs an Oversight or an AsyncOversight")
        self.client = client
        self.async_client = async_client
        self.actions = dict(actions or {})
        self.default = default
        self.timeout = timeout
        self.interrupt = interrupt

    def wrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Answer]
    ) -> Answer:
        if self.client is None:
            raise TypeError("a synchronous run needs OversightMiddleware(client=Oversight(...))")
        client, call, key = self.client, request.tool_call, self._resume_key(request)
        session = _thread_id(request)[:100]
        rule = resolve(self.actions, call["name"], self.default)
        try:
            arguments = as_the_tool_reads(request, rule)
        except ArgumentsRefused as exc:
            return _answer(refusal(exc), request)

        def attempt() -> Answer | Refusal:
            return run_guarded(
                client,
                rule,
                arguments,
                lambda args: handler(request.override(tool_call={**call, "args": args})),
                timeout=self.timeout,
                after=_after_state,
                failure=_failure,
                noted=_with_note,
                session_id=session,
                idempotency_key=key,
                give_up=key is None,
            )

        outcome = attempt()
        if key and _still_held(outcome):
            interrupt(_interruption(outcome))
            # Resumed, and still nobody decided: withdrawn, unless a person decided it in
            # that very moment; then it is asked again, to run as approved or say why not.
            if not client.give_up(outcome.error.decision).pending:
                outcome = attempt()
        return _answer(outcome, request)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[Answer]],
    ) -> Answer:
        if self.async_client is None:
            raise TypeError(
                "an async run needs OversightMiddleware(async_client=AsyncOversight(...))"
            )
        client, call, key = self.async_client, request.tool_call, self._resume_key(request)
        session = _thread_id(request)[:100]
        rule = resolve(self.actions, call["name"], self.default)
        try:
            arguments = as_the_tool_reads(request, rule)
        except ArgumentsRefused as exc:
            return _answer(refusal(exc), request)

        async def attempt() -> Answer | Refusal:
            return await run_guarded_async(
                client,
                rule,
                arguments,
                lambda args: handler(request.override(tool_call={**call, "args": args})),
                timeout=self.timeout,
                after=_after_state,
                failure=_failure,
                noted=_with_note,
                session_id=session,
                idempotency_key=key,
                give_up=key is None,
            )

        outcome = await attempt()
        if key and _still_held(outcome):
            interrupt(_interruption(outcome))
            if not (await client.give_up(outcome.error.decision)).pending:  # as above
                outcome = await attempt()
        return _answer(outcome, request)

    def _resume_key(self, request: ToolCallRequest) -> str | None:
        """With `interrupt`, the idempotency key that brings a resumed call back to its
        action: the same thread and tool call give the same key. Without a thread id there
        is no resuming (nor interrupting), so the key is None and a hold is given up."""
        if not self.interrupt:
            return None
        thread_id = _thread_id(request)
        if not thread_id or not request.tool_call.get("id"):
            return None
        seed = f"langgraph:{thread_id}:{request.tool_call['id']}"
        return hashlib.sha256(seed.encode()).hexdigest()


def as_the_tool_reads(request: ToolCallRequest, rule: ToolAction) -> dict[str, Any]:
    """The call's arguments as its tool will read them: validated by the tool's own schema
    with its coercions applied (a pydantic schema reads "07" for an integer as 7), so the
    resource and the params Oversight decides are those the tool runs with, not a
    `crm:contact/07` past a forbid on `crm:contact/7`. ArgumentsRefused, saying where and
    what, when the tool would refuse them: refused before it is decided, as the MCP proxy
    refuses such a call. A tool the node does not know, or a schema of another kind, is
    asked for with the arguments as given."""
    arguments = dict(request.tool_call["args"])
    tool = request.tool
    if tool is None:
        return arguments
    schema = tool.tool_call_schema
    if isinstance(schema, dict):
        check_call(rule, schema_validator(schema), schema, arguments)
        return arguments
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return arguments
    try:
        read = schema.model_validate(arguments)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the arguments"
        raise mismatch(where, first["msg"]) from None
    return {**arguments, **read.model_dump(mode="json", exclude_unset=True)}


def _thread_id(request: ToolCallRequest) -> str:
    """The run's LangGraph thread ("" without one)."""
    config = getattr(request.runtime, "config", None) or {}
    return str((config.get("configurable") or {}).get("thread_id") or "")


def _still_held(outcome: Any) -> bool:
    return isinstance(outcome, Refusal) and isinstance(outcome.error, ApprovalTimeout)


def _interruption(outcome: Refusal) -> dict[str, Any]:
    """The interrupt's value: the call waits, still pending, for a person."""
    return {
        "oversight_action_id": outcome.action_id,
        "message": f"Waiting for a person's approval (Oversight action {outcome.action_id}); "
        "resume the thread once it is decided.",
    }


def _answer(outcome: Answer | Refusal, request: ToolCallRequest) -> Answer:
    if not isinstance(outcome, Refusal):
        return outcome
    return ToolMessage(
        content=outcome.text,
        tool_call_id=request.tool_call["id"] or "",
        name=request.tool_call["name"],
        status="error",
        artifact={"oversight_action_id": outcome.action_id},
    )


def _after_state(answer: Answer) -> Any:
    """The tool's answer as the after-state: its JSON when it is JSON, else its text."""
    if not isinstance(answer, ToolMessage):
        return None  # a Command updates the graph's state; there is no answer to record
    content = answer.content
    if isinstance(content, str):
        try:
            return json.loads(content)
        except ValueError:
            return content
    return content


def _with_note(answer: Answer, note: str) -> Answer:
    """The tool's message with the approval's note after its content; a Command (it
    updates the graph's state) as it is."""
    if not isinstance(answer, ToolMessage):
        return answer
    content = answer.content
    if isinstance(content, str):
        noted: str | list[Any] = f"{content}\n\n{note}" if content else note
    else:
        noted = [*content, {"type": "text", "text": note}]
    return answer.model_copy(update={"content": noted})


def _failure(answer: Answer) -> str | None:
    if isinstance(answer, ToolMessage) and answer.status == "error":
        return str(answer.content)
    return None
