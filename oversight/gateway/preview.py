"""The policy page's "try it" box: what the gateway would decide now, and the limits it
would count against. The decision is the pipeline's own (``pipeline.preview``: the same
steps, read-only); this module only adds the limits' current usage for display.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.gateway import pipeline
from oversight.killswitch.selectors import halting_switch_id
from oversight.policy.limits import window_start
from oversight.policy.models import Limit, LimitCounter


@dataclass(frozen=True)
class LimitPreview:
    name: str
    used_count: int
    max_count: int | None
    used_sum: Decimal
    max_sum: Decimal | None
    sum_param: str
    would_exceed: bool
    on_exceed: str


def _limit_previews(limits: list[Limit], exceeded: list[int]) -> list[LimitPreview]:
    """Each limit's usage in its current window, read in one query."""
    if not limits:
        return []
    now = timezone.now()
    windows = Q()
    for limit in limits:
        windows |= Q(limit=limit, window_start=window_start(now, limit.window_seconds))
    usage = {
        row["limit_id"]: row
        for row in LimitCounter.objects.filter(windows)
        .values("limit_id")
        .annotate(count=Sum("count"), total=Sum("total"))
    }
    return [
        LimitPreview(
            name=limit.name,
            used_count=usage.get(limit.pk, {}).get("count") or 0,
            max_count=limit.max_count,
            used_sum=usage.get(limit.pk, {}).get("total") or Decimal(0),
            max_sum=limit.max_sum,
            sum_param=limit.sum_param,
            would_exceed=limit.pk in exceeded,
            on_exceed=limit.on_exceed,
        )
        for limit in limits
    ]


def decision_preview(
    *,
    agent: Agent,
    environment: str,
    action: str,
    resource: str,
    params: dict[str, Any],
    parent_id: uuid.UUID | None = None,
) -> pipeline.Preview:
    """The pipeline's preview for this agent in ``environment``; its ``limits`` are
    LimitPreview rows."""
    credentials = pipeline.Credentials(
        agent=agent, environment=environment, switch_id=halting_switch_id(agent_id=agent.pk)
    )
    data = pipeline.ActionInput(
        action=action, resource=resource, params=params, parent_id=parent_id
    )
    result = pipeline.preview(credentials=credentials, data=data)
    rows = _limit_previews(result.limits, result.exceeded)
    return pipeline.Preview(
        status=result.status,
        reasons=result.reasons,
        policy_version=result.policy_version,
        approvals_required=result.approvals_required,
        limits=rows,
        exceeded=result.exceeded,
    )
