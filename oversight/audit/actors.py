"""Who did it: a person, an agent, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oversight.audit.models import ActorType


@dataclass(frozen=True)
class Actor:
    type: str
    label: str
    user_id: int | None = None
    agent_id: int | None = None

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls(type=ActorType.USER, label=user.get_username(), user_id=user.pk)

    @classmethod
    def for_agent(cls, agent: Any) -> Actor:
        return cls(type=ActorType.AGENT, label=f"agent:{agent.slug}", agent_id=agent.pk)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(type=ActorType.SYSTEM, label=f"system:{name}")
