"""Locking an agent's row for a change, without stopping its decisions."""

from __future__ import annotations

from oversight.agents.models import Agent


def agent_lock(agent_id: int) -> Agent:
    """The agent's row, locked until the transaction ends, with its owner and team loaded
    (not locked).

    ``FOR NO KEY UPDATE``: it excludes other changes of the agent, but not the key-share
    lock PostgreSQL's foreign-key check takes on the agent row when a decision of this
    agent commits. A plain ``FOR UPDATE`` made that decision wait while holding the audit
    append lock, which the change then asked for too: a deadlock under traffic.
    """
    return (
        Agent.objects.select_for_update(of=("self",), no_key=True)
        .select_related("owner", "team")
        .get(pk=agent_id)
    )
