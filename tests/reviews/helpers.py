"""Building blocks for review tests: actions at chosen times, grants, inbox reads."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.utils import timezone

from oversight.agents.models import Agent
from oversight.gateway.models import Action
from oversight.notifications.models import InboxItem
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from tests.conftest import SYSTEM

DAY = dt.timedelta(days=1)


def grant(agent: Agent, action: str, resource: str = "*", *, age_days: int = 0) -> Grant:
    """A grant, made `age_days` ago (a grant younger than 90 days is never called unused)."""
    made = policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action=action, resource=resource)
    )
    if age_days:
        made.created_at = timezone.now() - age_days * DAY
        Grant.objects.filter(pk=made.pk).update(created_at=made.created_at)
    return made


def act(
    agent: Agent,
    *,
    at: dt.datetime | None = None,
    grants: tuple[Grant, ...] = (),
    status: str = "allowed",
    action: str = "payments.refund",
) -> Action:
    """An action recorded as the gateway records it (reasons naming the grants that allowed
    it), created at ``at``."""
    reasons: list[dict[str, Any]] = [
        {"kind": "grant", "id": g.pk, "name": str(g), "effect": "allow", "detail": ""}
        for g in grants
    ] or [{"kind": "default", "id": None, "name": "default deny", "effect": "deny", "detail": ""}]
    created = Action.objects.create(
        agent=agent,
        environment="staging",
        action=action,
        resource="stripe:charge/ch_1",
        status=status,
        decision=status,
        reasons=reasons,
        request_hash=hashlib.sha256(str(at).encode()).hexdigest(),
    )
    if at is not None:
        Action.objects.filter(pk=created.pk).update(created_at=at)
    return created


def inbox(user: Any, kind: str | None = None) -> list[InboxItem]:
    items = InboxItem.objects.filter(user=user).order_by("id")
    if kind:
        items = items.filter(kind=kind)
    return list(items)


def noon(date: dt.date) -> dt.datetime:
    """Midday of a local date: a ``now`` for the jobs, far from any day boundary."""
    return timezone.make_aware(dt.datetime.combine(date, dt.time(12)))


def fresh(agent: Agent) -> Agent:
    return Agent.objects.select_related("owner", "team").get(pk=agent.pk)
