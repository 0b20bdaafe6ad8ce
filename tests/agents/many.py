"""Many agents at once, written in bulk (registries larger than a test can build one by
one through the services)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from oversight.agents.models import Agent


def many_agents(*, team: Any, owner: Any, n: int, prefix: str = "bulk") -> list[Agent]:
    due = dt.date.today() + dt.timedelta(days=90)
    return Agent.objects.bulk_create(
        Agent(
            name=f"{prefix.title()} agent {i:05d}",
            slug=f"{prefix}-agent-{i:05d}",
            purpose="Synthetic.",
            owner=owner,
            team=team,
            risk_tier=("low", "medium", "high", "critical")[i % 4],
            next_review_due=due,
        )
        for i in range(n)
    )
