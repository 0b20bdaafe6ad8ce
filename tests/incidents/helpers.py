"""Traffic for incident tests: decisions made through the pipeline, then placed on a
timeline (``created_at``) around a change made through the services, so a test can have
ten minutes of history without waiting ten minutes. The change's own audit events keep
the time they were made: the timeline is built around them."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from oversight.agents.models import AgentToken
from oversight.gateway.models import Action
from tests.gateway.helpers import decide, refund

Body = Callable[[random.Random], dict[str, Any]]


def small_refund(rng: random.Random) -> dict[str, Any]:
    charge = f"ch_{rng.getrandbits(32):x}"
    return refund(rng.randint(5, 300), charges=(charge,))


def bulk_refund(rng: random.Random) -> dict[str, Any]:
    charges = tuple(f"ch_{rng.getrandbits(32):x}" for _ in range(3))
    return refund(rng.randint(20, 200), charges=charges)


def mix(*weighted: tuple[int, Body]) -> Body:
    weights, bodies = zip(*weighted, strict=True)

    def body(rng: random.Random) -> dict[str, Any]:
        return rng.choices(bodies, weights)[0](rng)

    return body


def traffic(token: AgentToken, body: Body, count: int, *, seed: int) -> list[Action]:
    rng = random.Random(seed)
    return [decide(token, body(rng)) for _ in range(count)]


def place(actions: list[Action], start: dt.datetime, end: dt.datetime) -> None:
    """Spread the actions evenly over [start, end), in the order they were decided."""
    step = (end - start) / max(len(actions), 1)
    for index, action in enumerate(actions):
        Action.objects.filter(pk=action.pk).update(created_at=start + step * index)
