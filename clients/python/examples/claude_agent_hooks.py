"""The Claude Agent SDK's hooks deciding a tool call: `OVERSIGHT_URL=... OVERSIGHT_TOKEN=...
python claude_agent_hooks.py ch_1 10`.

Claude Code (the CLI the SDK drives) is not needed: this calls the hooks the way the SDK
does and plays the CLI's part. With Claude Code installed, pass the same hooks to
`ClaudeAgentOptions(hooks=oversight.hooks())` instead (docs/integrations/claude-agent-sdk.md).
Needs `pip install './clients/python[claude-agent]'`.
"""

import asyncio
import sys

from oversight_sdk import AsyncOversight
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.claude_agent import ClaudeOversight

TOOL = "mcp__payments__refund"  # the tool `refund` of an MCP server named "payments"


def refund(charge: str, amount: int) -> dict:
    print(f"refund ran: {charge} {amount}")
    return {"refunded": amount, "charge": charge}


async def main(charge: str = "ch_1", amount: str = "10") -> None:
    async with AsyncOversight() as client:  # OVERSIGHT_URL, OVERSIGHT_TOKEN
        oversight = ClaudeOversight(
            client,
            actions={TOOL: ToolAction("payments.refund", resource="stripe:charge/{charge}")},
        )
        hooks = oversight.hooks()  # what ClaudeAgentOptions(hooks=...) takes
        [pre] = hooks["PreToolUse"][0].hooks
        [post] = hooks["PostToolUse"][0].hooks
        event = {
            "hook_event_name": "PreToolUse",
            "session_id": "example",
            "transcript_path": "example.jsonl",
            "cwd": ".",
            "tool_name": TOOL,
            "tool_input": {"charge": charge, "amount": int(amount)},
            "tool_use_id": "toolu_1",
        }
        decided = (await pre(event, "toolu_1", {"signal": None}))["hookSpecificOutput"]
        print(f"PreToolUse: {decided['permissionDecision']}: {decided['permissionDecisionReason']}")
        if decided["permissionDecision"] == "allow":  # Claude Code runs the tool, then:
            response = refund(**decided["updatedInput"])
            await post(
                {**event, "hook_event_name": "PostToolUse", "tool_response": response},
                "toolu_1",
                {"signal": None},
            )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
