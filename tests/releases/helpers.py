"""Rollouts as tests set them up: a candidate release in a canary, and sessions by bucket."""

from __future__ import annotations

from typing import Any

from oversight.agents.services import agent_update
from oversight.releases.assignment import bucket
from oversight.releases.models import Release, Rollout
from oversight.releases.rollouts import rollout_start
from oversight.releases.services import release_rollback
from tests.conftest import SYSTEM


def canary_of_new_instructions(agent: Any, *, plan: list[int]) -> tuple[Release, Rollout]:
    """A candidate release (new instructions) in a canary of `plan` (percentages), the
    release before it stable again (a rollback), as a staged rollout would have it."""
    agent_update(actor=SYSTEM, agent=agent, instructions="Refund carefully.")
    candidate = agent.releases.order_by("-version").first()
    release_rollback(actor=SYSTEM, release=agent.releases.get(version=candidate.version - 1))
    rollout = rollout_start(actor=SYSTEM, release=candidate, stage="canary", plan=plan)
    agent.refresh_from_db()
    return candidate, rollout


def sessions_in_buckets(
    agent: Any, candidate: Release, *, start: int, end: int, count: int, prefix: str = "s"
) -> list[str]:
    """`count` session ids whose bucket in this rollout is in [start, end) (buckets hash
    the agent's id, which differs between runs, so they are searched for)."""
    found = [
        session
        for n in range(20 * count * 100)
        if start <= bucket(agent.pk, candidate.version, session := f"{prefix}-{n}") < end
    ][:count]
    assert len(found) == count, "no such sessions among those tried"
    return found
