"""Many held actions at once, written in bulk (for queue sizes a test cannot decide one
by one through the gateway)."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.utils import timezone

from oversight.agents.models import Agent
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action


def held_actions(agent: Agent, n: int, *, expires_in: int = 900) -> list[Action]:
    """``n`` actions of ``agent`` held for one approval, expiring a second apart."""
    now = timezone.now()
    return Action.objects.bulk_create(
        Action(
            agent=agent,
            environment="production",
            action="payments.refund",
            resource=f"stripe:charge/ch_{agent.pk}_{i}",
            params={"amount": 900 + i},
            status=ActionStatus.PENDING,
            decision=ActionStatus.PENDING,
            reasons=[{"kind": "rule", "name": "big refunds", "effect": "hold", "detail": ""}],
            approvals_required=1,
            expires_at=now + dt.timedelta(seconds=expires_in + i),
            request_hash=hashlib.sha256(f"{agent.pk}-{i}".encode()).hexdigest(),
        )
        for i in range(n)
    )
