"""Which release decides a request: the pipeline's release step, and the answer of
``GET /api/v1/agent/release`` (one implementation for both).

Read from the agent's row only (its stable release and, during a rollout, the candidate
with its stage and canary share), so it costs no query and the credentials' fingerprint
covers it: a promotion or a stage change between reading and recording makes the record
step read the credentials again.

    no rollout          stable
    staging token       the candidate (in every stage), recorded as a dry run
    staging stage       stable for production tokens
    shadow stage        stable decides; the candidate is evaluated beside it
    canary stage        the candidate for a sticky share of sessions, stable for the rest;
                        a session that says which of the two it loaded keeps it
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from oversight.agents.constants import Environment
from oversight.agents.models import Agent
from oversight.releases.models import Stage

BUCKETS = 10_000  # a canary share is in basis points: 100 buckets are 1%


@dataclass(frozen=True)
class Assignment:
    """The release that decides (its id and version) and the one evaluated in its shadow."""

    release_id: int | None
    version: int | None
    shadow_id: int | None = None
    shadow_version: int | None = None


def bucket(agent_id: int, candidate_version: int, session_id: str) -> int:
    """A session's bucket in one rollout (0 to 9,999): sticky for the session, independent
    between rollouts and agents. A request without a session is its own session."""
    if not session_id:
        return secrets.randbelow(BUCKETS)
    key = f"{agent_id}:{candidate_version}:{session_id}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % BUCKETS


def assign(
    agent: Agent, *, environment: str, session_id: str = "", running: int | None = None
) -> Assignment:
    """``running``: the version the agent says the session runs (it loaded it from
    ``GET /agent/release``). In a canary, a session that loaded the stable release or the
    candidate keeps it while the share moves past its bucket (else its later actions
    would be decided, and counted by the rollout guard, under a release it does not run);
    it can only choose between the two releases the rollout has in force. Any other
    version, and every other stage, is assigned as if nothing were said."""
    stable = Assignment(agent.stable_release_id, agent.stable_version)
    candidate, stage = agent.candidate_release_id, agent.rollout_stage
    if candidate is None or not stage:
        return stable
    version = agent.candidate_version or 0
    if environment == Environment.STAGING:
        return Assignment(candidate, version)
    if stage == Stage.SHADOW:
        return Assignment(stable.release_id, stable.version, candidate, version)
    if stage != Stage.CANARY:
        return stable
    if running is not None and running in (version, stable.version):
        return Assignment(candidate, version) if running == version else stable
    if bucket(agent.pk, version, session_id) < agent.canary_share:
        return Assignment(candidate, version)
    return stable
