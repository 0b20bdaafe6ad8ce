"""The Claude Agent SDK's permission callback fails closed, offline: with no Oversight to
ask, the tool is denied with the reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sdk_extras

pytest.importorskip("claude_agent_sdk", reason=sdk_extras.reason("claude-agent"))

from claude_agent_sdk import PermissionResultDeny, ToolPermissionContext

from oversight_sdk import AsyncOversight
from oversight_sdk.adapters.claude_agent import ClaudeOversight, claude_action

ARGUMENTS = {"charge": "ch_1", "amount": 10}


def test_claude_denies_without_oversight(nowhere: str) -> None:
    async def run() -> Any:
        async with AsyncOversight(nowhere, "ovs_prod_x", retries=0) as client:
            oversight = ClaudeOversight(client)
            context = ToolPermissionContext(tool_use_id="toolu_1")
            return await oversight.can_use_tool("mcp__payments__refund", ARGUMENTS, context)

    denied = asyncio.run(run())
    assert isinstance(denied, PermissionResultDeny) and "could not decide" in denied.message


def test_claude_tools_are_named_as_actions() -> None:
    assert claude_action("mcp__payments__refund").action == "mcp.payments.refund"
    assert claude_action("Bash").resource == "claude:bash"
