"""The Claude Agent SDK's PreToolUse/PostToolUse hooks, called as the SDK's control loop
calls them; this driver plays Claude Code's part (the CLI is not installed): it runs the
tool with the input the hook allowed and hands the response to PostToolUse."""

from __future__ import annotations

import asyncio
import re

from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.claude_agent import ClaudeOversight

from ..harness import AsyncRecordingOversight, Seen, refund_effect

TOOL = "mcp__payments__refund"
REFUND = ToolAction("payments.refund", resource="stripe:charge/{charge}")
WAIT = 50.0


def action_id_in(text: str) -> str | None:
    found = re.search(r"Oversight action ([0-9a-f-]{36})", text)
    return found.group(1) if found else None


class ClaudeAgentDriver:
    name = "claude_agent"

    def call(self, *, url: str, token: str, arguments: dict) -> Seen:
        executed: list[dict] = []

        def refund(charge: str, amount: int) -> dict:
            return refund_effect(executed, charge, amount)

        async def run() -> Seen:
            async with AsyncRecordingOversight(url, token) as client:
                hooks = ClaudeOversight(client, actions={TOOL: REFUND}, timeout=WAIT).hooks()
                [pre] = hooks["PreToolUse"][0].hooks
                [post] = hooks["PostToolUse"][0].hooks
                event = {
                    "hook_event_name": "PreToolUse",
                    "session_id": "conformance",
                    "transcript_path": "conformance.jsonl",
                    "cwd": ".",
                    "tool_name": TOOL,
                    "tool_input": arguments,
                    "tool_use_id": "toolu_1",
                }
                decided = (await pre(event, "toolu_1", {"signal": None}))["hookSpecificOutput"]
                if decided["permissionDecision"] != "allow":
                    text = decided["permissionDecisionReason"]
                    return Seen(executed, text, True, action_id_in(text))
                try:
                    response = refund(**decided["updatedInput"])
                except RuntimeError as exc:  # Claude Code tells the hooks of the failure
                    failed = {**event, "hook_event_name": "PostToolUseFailure", "error": str(exc)}
                    await post(failed, "toolu_1", {"signal": None})
                    return Seen(executed, str(exc), True, client.last_asked())
                post_event = {**event, "hook_event_name": "PostToolUse", "tool_response": response}
                reported = await post(post_event, "toolu_1", {"signal": None})
                # What Claude reads with the response: the approval's note, if any.
                told = reported.get("hookSpecificOutput", {}).get("additionalContext")
                text = "\n".join([str(response), *([told] if told else [])])
                return Seen(executed, text, False, client.last_asked())

        return asyncio.run(run())


DRIVER = ClaudeAgentDriver()
