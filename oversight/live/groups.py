"""Channel-layer group names. Each socket joins the groups of what its user may see."""

from __future__ import annotations

EVERYONE = "everyone"  # every signed-in socket: global kill-switch banners, permission changes


def agent_feed(agent_id: int) -> str:
    """Actions of one agent, for people who may view it."""
    return f"agent-{agent_id}-feed"


def agent_queue(agent_id: int) -> str:
    """Held actions of one agent, for people who may approve them."""
    return f"agent-{agent_id}-queue"
