"""Synthetic traffic: Action rows with chosen times, decisions and results."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from oversight.agents.models import Agent
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.monitoring.jobs import monitoring_backfill

UTC = dt.UTC
# A fixed "now" away from any minute or hour boundary, a weekday at 14:30:20 UTC.
NOW = dt.datetime(2030, 3, 13, 14, 30, 20, tzinfo=UTC)
MINUTE = dt.timedelta(minutes=1)


def actions_at(
    agent: Agent,
    at: dt.datetime,
    n: int = 1,
    *,
    decision: str = ActionStatus.ALLOWED,
    status: str = "",
    resource: str = "stripe:charge/ch_1",
    action: str = "payments.refund",
) -> list[Action]:
    """``n`` actions of the agent created at ``at`` (spread over its second)."""
    rows = [
        Action(
            agent=agent,
            environment="production",
            action=action,
            resource=resource,
            params={},
            status=status or decision,
            decision=decision,
            request_hash=hashlib.sha256(f"{at}{i}".encode()).hexdigest(),
        )
        for i in range(n)
    ]
    created = Action.objects.bulk_create(rows)
    for i, row in enumerate(created):
        row.created_at = at + dt.timedelta(microseconds=i)
    Action.objects.bulk_update(created, ["created_at"], batch_size=500)
    return created


def steady(agent: Agent, *, end: dt.datetime, minutes: int, per_minute: int, **fields: Any) -> None:
    """``per_minute`` actions in each of the ``minutes`` minutes before ``end``."""
    for m in range(minutes, 0, -1):
        actions_at(agent, end - dt.timedelta(minutes=m), per_minute, **fields)


def hourly(agent: Agent, *, end: dt.datetime, days: int, hours: range, **fields: Any) -> None:
    """One action at half past each of ``hours`` (UTC) on each of the ``days`` before ``end``."""
    for d in range(days, 0, -1):
        day = (end - dt.timedelta(days=d)).replace(minute=30, second=0, microsecond=0)
        for h in hours:
            actions_at(agent, day.replace(hour=h), **fields)


def history(
    agent: Agent, *, now: dt.datetime = NOW, hours: int = 3, per_minute: int = 10, **fields: Any
) -> None:
    """Steady traffic for ``hours`` before the detection window, rolled up and learnt."""
    window = now.replace(second=0) - 4 * MINUTE
    steady(agent, end=window, minutes=hours * 60, per_minute=per_minute, **fields)
    monitoring_backfill(start=window - dt.timedelta(hours=hours + 1), end=window)
