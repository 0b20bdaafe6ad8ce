"""What a person's live socket subscribes to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oversight.agents.constants import APPROVE, VIEW
from oversight.agents.selectors import agents_with_perm


@dataclass(frozen=True)
class Subscriptions:
    feed: frozenset[int]  # agent ids whose actions the user may see
    queue: frozenset[int]  # agent ids whose held actions the user may decide


def live_subscriptions(*, user: Any) -> Subscriptions:
    """Two indexed queries; an inactive user subscribes to nothing."""
    if not getattr(user, "is_active", False):
        return Subscriptions(frozenset(), frozenset())
    feed = agents_with_perm(user=user, perm=VIEW).values_list("pk", flat=True)
    queue = agents_with_perm(user=user, perm=APPROVE).values_list("pk", flat=True)
    return Subscriptions(frozenset(feed), frozenset(queue))


def agents_named_by(*, team: str = "", risk: str = "") -> frozenset[int]:
    """Ids of the agents of team ``team`` (slug) and risk tier ``risk``, for a page
    filtered by them (see oversight/live/pages.py). Not a permission: the socket's
    subscriptions still decide what its person may see."""
    from oversight.agents.models import Agent

    agents = Agent.objects.all()
    if team:
        agents = agents.filter(team__slug=team)
    if risk:
        agents = agents.filter(risk_tier=risk)
    return frozenset(agents.values_list("pk", flat=True))
