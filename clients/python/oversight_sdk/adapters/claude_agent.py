"""The Claude Agent SDK: a `can_use_tool` callback and `PreToolUse` / `PostToolUse` hooks
that put every tool call Claude makes to Oversight
(`pip install './clients/python[claude-agent]'`).

    from claude_agent_sdk import ClaudeAgentOptions
    from oversight_sdk import AsyncOversight
    from oversight_sdk.adapters import ToolAction
    from oversight_sdk.adapters.claude_agent import ClaudeOversight

    oversight = ClaudeOversight(
        AsyncOversight(),
        actions={"mcp__payments__refund": ToolAction("payments.refund",
                                                     resource="stripe:charge/{charge}")},
    )
    options = ClaudeAgentOptions(hooks=oversight.hooks())          # every tool call
    # or ClaudeAgentOptions(can_use_tool=oversight.can_use_tool, hooks=oversight.report_hooks())

Claude Code runs the tools, not this process, so a call is decided before it runs and its
outcome reported after: the PreToolUse hook (or `can_use_tool`) asks Oversight, waits
while a person decides (up to `timeout`, below the hook's own time-out), and allows the
call with the input she approved (edited or not) or denies it with the reason, which
Claude reads. The PostToolUse hook reports the tool's response as the after-state;
PostToolUseFailure reports it failed. When the approval edited the input or came with a
comment, either hook tells Claude so (`additionalContext`: "Oversight: Rita Reviewer
approved this call with edited arguments (amount: 150 -> 120), saying: ..."). Oversight
unreachable: denied (fail closed).

The session Oversight records (a canary draws sessions; a rewind may take one) is Claude
Code's session, which each hook's input names; `can_use_tool` is not told it, so give
`ClaudeOversight(..., session_id=...)` for that one (a session you resume, say).

Tools without an entry in `actions`: an MCP tool `mcp__<server>__<tool>` is the action
`mcp.<server>.<tool>` on `mcp:<server>/<tool>` (as the MCP proxy names it); a built-in
tool such as `Bash` is `claude.bash` on `claude:bash`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from .._extras import extra
from ..aio import AsyncOversight
from ..errors import OversightError
from ..guard import AsyncGuard
from ._tools import ToolAction, refusal, resolve

with extra("claude-agent", __name__):
    from claude_agent_sdk import (
        HookContext,
        HookMatcher,
        PermissionResultAllow,
        PermissionResultDeny,
        ToolPermissionContext,
    )
    from claude_agent_sdk.types import HookEvent, HookInput, PermissionResult, SyncHookJSONOutput

logger = logging.getLogger("oversight_sdk")

# A hook the CLI waits for longer than this is cut off (HookMatcher's default is 60 s).
DEFAULT_TIMEOUT = 50.0


def claude_action(tool_name: str) -> ToolAction:
    """The default action of a Claude tool (see the module's docstring)."""

    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9_-]+", "_", text.lower()).strip("_") or "unnamed"

    parts = tool_name.split("__")
    if len(parts) >= 3 and parts[0] == "mcp":
        server, tool = slug(parts[1]), slug("__".join(parts[2:]))
        return ToolAction(f"mcp.{server}.{tool}", resource=f"mcp:{server}/{tool}")
    return ToolAction(f"claude.{slug(tool_name)}", resource=f"claude:{slug(tool_name)}")


class ClaudeOversight:
    """The callback and hooks, sharing the calls in flight (by tool use id)."""

    def __init__(
        self,
        client: AsyncOversight,
        *,
        actions: Mapping[str, ToolAction] | None = None,
        default: Callable[[str], ToolAction] = claude_action,
        timeout: float = DEFAULT_TIMEOUT,
        session_id: str = "",
    ) -> None:
        self.client = client
        self.actions = dict(actions or {})
        self.default = default
        self.timeout = timeout
        self.session_id = session_id  # where Claude Code does not say (can_use_tool)
        # Allowed calls not yet reported, by tool use id: their guard (what was decided).
        self._running: dict[str, AsyncGuard] = {}

    # -- the decision -------------------------------------------------------------------

    async def decide(
        self,
        tool_name: str,
        tool_input: dict[str, Any],
        tool_use_id: str | None,
        session_id: str | None = None,
    ) -> tuple[dict[str, Any] | None, str]:
        """(the input to run, "") when the call may run, else (None, why not).
        `session_id`: Claude Code's, when it says (else the one this object was given)."""
        if tool_use_id and tool_use_id in self._running:  # the hook and the callback both
            return {**tool_input, **self._running[tool_use_id].edited_arguments}, ""
        rule = resolve(self.actions, tool_name, self.default)
        session = str(session_id or self.session_id)[:100]
        spec = rule.spec(timeout=self.timeout, session_id=session)
        guard = AsyncGuard(self.client, spec, dict(tool_input))
        try:
            # In a task of its own: the guard's "current guard" stays out of the CLI's
            # control loop, since the block it marks runs in Claude Code, not here.
            await asyncio.create_task(guard.__aenter__())
        except Exception as exc:  # fail closed
            if not isinstance(exc, OversightError):
                logger.exception("could not describe a tool call to Oversight; denied")
            return None, refusal(exc).text
        if tool_use_id:
            self._running[tool_use_id] = guard
        return {**tool_input, **guard.edited_arguments}, ""

    async def can_use_tool(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        """`ClaudeAgentOptions(can_use_tool=...)`."""
        run_input, why_not = await self.decide(tool_name, tool_input, context.tool_use_id)
        if run_input is None:
            return PermissionResultDeny(message=why_not)
        return PermissionResultAllow(updated_input=run_input)

    async def pre_tool_use(
        self, input_data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> SyncHookJSONOutput:
        """The `PreToolUse` hook."""
        if input_data.get("hook_event_name") != "PreToolUse":
            return {}
        tool_use_id = tool_use_id or input_data.get("tool_use_id")
        run_input, why_not = await self.decide(
            input_data["tool_name"],
            input_data["tool_input"],
            tool_use_id,
            input_data.get("session_id"),
        )
        if run_input is None:
            return {
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "deny",
                    "permissionDecisionReason": why_not,
                }
            }
        guard = self._running.get(tool_use_id or "")
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "allow",
                "permissionDecisionReason": _allowed_because(guard),
                "updatedInput": run_input,
            }
        }

    # -- the outcome --------------------------------------------------------------------

    async def post_tool_use(
        self, input_data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> SyncHookJSONOutput:
        """The `PostToolUse` and `PostToolUseFailure` hooks: report what happened, and tell
        Claude what the approval said beyond yes."""
        event = input_data.get("hook_event_name")
        guard = self._running.pop(tool_use_id or input_data.get("tool_use_id") or "", None)
        if guard is None or event not in ("PostToolUse", "PostToolUseFailure"):
            return {}
        request, decision = guard.request, guard.decision
        assert request is not None and decision is not None
        failed = event == "PostToolUseFailure"
        try:
            await self.client.report(
                decision.id,
                "failed" if failed else "succeeded",
                after=None if failed else _json(input_data.get("tool_response")),
                error=str(input_data.get("error") or "") if failed else "",
                action=request.action,
                resource=request.resource,
                params=guard.params,
            )
        except OversightError as exc:
            logger.error("could not report the outcome of action %s: %s", decision.id, exc)
        if not guard.approval_note:
            return {}
        # What the approval said beyond yes (the input edited, the reviewer's comment),
        # for Claude to read with the tool's response.
        told: Any = {"hookEventName": event, "additionalContext": guard.approval_note}
        return {"hookSpecificOutput": told}

    def hooks(self) -> dict[HookEvent, list[HookMatcher]]:
        """`ClaudeAgentOptions(hooks=...)`: decide in PreToolUse, report after."""
        return {"PreToolUse": [self._matcher(self.pre_tool_use)], **self.report_hooks()}

    def report_hooks(self) -> dict[HookEvent, list[HookMatcher]]:
        """Only the reporting hooks, to go with `can_use_tool`."""
        return {
            "PostToolUse": [self._matcher(self.post_tool_use)],
            "PostToolUseFailure": [self._matcher(self.post_tool_use)],
        }

    def _matcher(self, hook: Any) -> HookMatcher:
        return HookMatcher(matcher=None, hooks=[hook], timeout=self.timeout + 10)


def _json(value: Any) -> Any:
    """A tool response as JSON: MCP tools answer with text that is often JSON itself."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def _allowed_because(guard: AsyncGuard | None) -> str:
    """Why a call runs, for Claude and the transcript: what a person's approval said (who,
    an edit, a comment), or who approved it; otherwise that Oversight allowed it."""
    decision = guard.decision if guard is not None else None
    if decision is None:
        return "Oversight allowed it"
    if decision.approval_note:
        return decision.approval_note
    if decision.decided_by:
        return f"Oversight: {decision.decided_by} approved this call."
    return "Oversight allowed it"
