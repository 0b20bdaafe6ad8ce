"""What an agent's MCP proxy learns about the tools it lists: may the agent use each, and
is its definition the pinned one (agents/tool_pins.py)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from oversight.agents.models import AgentToken
from oversight.agents.tool_pins import SeenTool, tool_pins_record
from oversight.policy.compiled import compiled_policy_for


def tools_seen(*, token: AgentToken, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pin what is new, note what changed, and say which tools the agent may use."""
    agent = token.agent
    seen = [SeenTool(**tool) for tool in tools]
    states = tool_pins_record(agent=agent, tools=seen)
    policy, now = compiled_policy_for(agent), timezone.now()
    return [
        {
            "name": tool.name,
            "action": tool.action,
            "granted": policy.may_use(tool.action, now),
            "pin": states[tool.action],
        }
        for tool in seen
    ]
