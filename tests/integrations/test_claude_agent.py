"""The Claude Agent SDK's callback and hooks against the live server.

The SDK drives Claude Code (a CLI that is not here), so these tests call the hook and the
callback as the SDK's control loop does (input dict, tool use id, `{"signal": None}`;
tool name, input, `ToolPermissionContext`) and play the CLI's part: run the tool with the
input the hook allowed, then call PostToolUse with its response."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny, ToolPermissionContext

from oversight.gateway.models import Action
from oversight_sdk import AsyncOversight
from oversight_sdk.adapters.claude_agent import ClaudeOversight, claude_action
from tests.integrations.conftest import REFUND_ACTION, Refunds, finish, in_thread, vote

pytestmark = pytest.mark.postgres

TOOL = "mcp__payments__refund"


def _as_the_cli(url: str, token: str, refunds: Refunds, **arguments: Any) -> dict[str, Any]:
    """One tool call through the hooks; returns the PreToolUse hook's answer."""

    async def scenario() -> dict[str, Any]:
        async with AsyncOversight(url, token, retries=0) as client:
            oversight = ClaudeOversight(client, actions={TOOL: REFUND_ACTION}, timeout=20)
            [pre] = oversight.hooks()["PreToolUse"][0].hooks
            [post] = oversight.hooks()["PostToolUse"][0].hooks
            event = {
                "hook_event_name": "PreToolUse",
                "session_id": "s1",
                "transcript_path": "session.jsonl",
                "cwd": ".",
                "tool_name": TOOL,
                "tool_input": arguments,
                "tool_use_id": "toolu_1",
            }
            answer = await pre(event, "toolu_1", {"signal": None})
            specific = answer["hookSpecificOutput"]
            if specific["permissionDecision"] == "allow":
                response = refunds(**specific["updatedInput"])
                await post(
                    {**event, "hook_event_name": "PostToolUse", "tool_response": response},
                    "toolu_1",
                    {"signal": None},
                )
            return specific

    return asyncio.run(scenario())


def test_an_allowed_call_is_allowed_and_its_response_reported(
    live_url: str, token: str, refunds: Refunds
) -> None:
    answer = _as_the_cli(live_url, token, refunds, charge="ch_1", amount=10)
    assert answer["permissionDecision"] == "allow"
    assert answer["permissionDecisionReason"] == "Oversight allowed it"
    assert refunds.executed == [{"charge": "ch_1", "amount": 10}]
    action = Action.objects.get()
    assert (action.status, action.after) == ("succeeded", {"refunded": 10, "charge": "ch_1"})
    assert action.session_id == "s1"  # Claude Code's session, as the hook says it


def test_a_denied_call_is_denied_with_the_reason(
    live_url: str, token: str, refunds: Refunds
) -> None:
    answer = _as_the_cli(live_url, token, refunds, charge="ch_blocked", amount=10)
    assert answer["permissionDecision"] == "deny"
    assert "blocked charge" in answer["permissionDecisionReason"]
    assert refunds.executed == []


def test_a_held_call_is_allowed_once_approved(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    thread, ended = in_thread(
        lambda: _as_the_cli(live_url, token, refunds, charge="ch_2", amount=150)
    )
    vote(approver, approve=True)
    answer = finish(thread, ended)
    assert answer["permissionDecision"] == "allow"
    name = approver.get_full_name() or approver.get_username()
    assert answer["permissionDecisionReason"] == f"Oversight: {name} approved this call."
    assert refunds.executed == [{"charge": "ch_2", "amount": 150}]
    assert Action.objects.get().status == "succeeded"


def test_a_rejected_call_is_denied_with_the_comment(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    thread, ended = in_thread(
        lambda: _as_the_cli(live_url, token, refunds, charge="ch_3", amount=150)
    )
    vote(approver, approve=False, comment="refund 50 at most")
    answer = finish(thread, ended)
    assert answer["permissionDecision"] == "deny"
    assert "refund 50 at most" in answer["permissionDecisionReason"]
    assert refunds.executed == []


def test_a_call_approved_with_edits_runs_the_edited_input(
    live_url: str, token: str, refunds: Refunds, approver: Any
) -> None:
    thread, ended = in_thread(
        lambda: _as_the_cli(live_url, token, refunds, charge="ch_4", amount=150)
    )
    vote(approver, approve=True, params={"charge": "ch_4", "amount": 120})
    answer = finish(thread, ended)
    assert answer["updatedInput"] == {"charge": "ch_4", "amount": 120}
    # Claude is told it was a person's approval of other arguments, not a plain "allowed".
    assert "approved this call with edited arguments" in answer["permissionDecisionReason"]
    assert refunds.executed == [{"charge": "ch_4", "amount": 120}]
    action = Action.objects.get()
    assert (action.status, action.after["refunded"]) == ("succeeded", 120)


def test_halted_staging_and_unreachable_are_denied(
    live_url: str,
    token: str,
    staging_token: str,
    unreachable_url: str,
    refunds: Refunds,
    halt: Any,
) -> None:
    staged = _as_the_cli(live_url, staging_token, refunds, charge="ch_5", amount=10)
    assert "Dry run" in staged["permissionDecisionReason"]
    unreachable = _as_the_cli(unreachable_url, "ovs_prod_x", refunds, charge="ch_6", amount=10)
    assert "could not decide" in unreachable["permissionDecisionReason"]
    halt()
    halted = _as_the_cli(live_url, token, refunds, charge="ch_7", amount=10)
    assert "kill switch" in halted["permissionDecisionReason"]
    assert refunds.executed == []
    assert [a["permissionDecision"] for a in (staged, unreachable, halted)] == ["deny"] * 3


def test_the_can_use_tool_callback_decides_too(live_url: str, token: str, refunds: Refunds) -> None:
    """The callback is not told Claude Code's session: the one it was given is recorded."""

    async def scenario() -> list[Any]:
        async with AsyncOversight(live_url, token) as client:
            oversight = ClaudeOversight(client, actions={TOOL: REFUND_ACTION}, session_id="s9")
            context = ToolPermissionContext(tool_use_id="toolu_9")
            allowed = await oversight.can_use_tool(TOOL, {"charge": "ch_8", "amount": 10}, context)
            denied = await oversight.can_use_tool(
                TOOL,
                {"charge": "ch_blocked", "amount": 10},
                ToolPermissionContext(tool_use_id="toolu_10"),
            )
            return [allowed, denied]

    allowed, denied = asyncio.run(scenario())
    assert isinstance(allowed, PermissionResultAllow)
    assert allowed.updated_input == {"charge": "ch_8", "amount": 10}
    assert isinstance(denied, PermissionResultDeny) and "blocked charge" in denied.message
    assert set(Action.objects.values_list("session_id", flat=True)) == {"s9"}


def test_tools_are_named_like_the_mcp_proxy_names_them() -> None:
    assert claude_action("mcp__payments__refund").action == "mcp.payments.refund"
    assert claude_action("Bash").action == "claude.bash"
