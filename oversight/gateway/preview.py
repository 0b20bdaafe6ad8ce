"""What the gateway would decide for an action, without recording or charging anything.

Used by the policy page's "try it" box. It follows the decision path: kill switches,
policy, staging, limits (read, not charged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from oversight.agents.constants import Environment
from oversight.agents.models import Agent
from oversight.gateway.services import policy_request, reason_dicts
from oversight.killswitch.selectors import halting_switch
from oversight.policy.compiled import compiled_policy_for, limits_for
from oversight.policy.limits import window_start
from oversight.policy.models import LimitCounter


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


@dataclass(frozen=True)
class Preview:
    status: str
    reasons: list[dict[str, Any]]
    policy_version: int
    approvals_required: int = 0
    limits: list[LimitPreview] = field(default_factory=list)


def _limit_preview(limit: Any, params: dict[str, Any], now: Any) -> LimitPreview:
    window = window_start(now, limit.window_seconds)
    usage = LimitCounter.objects.filter(limit=limit, window_start=window).aggregate(
        count=Sum("count"), total=Sum("total")
    )
    used_count, used_sum = usage["count"] or 0, usage["total"] or Decimal(0)
    amount_raw = params.get(limit.sum_param) if limit.sum_param else 0
    try:
        amount = Decimal(str(amount_raw))
    except ArithmeticError:
        amount = None
    exceed = limit.max_count is not None and used_count + 1 > limit.max_count
    if limit.max_sum is not None:
        exceed = exceed or amount is None or used_sum + amount > limit.max_sum
    return LimitPreview(
        name=limit.name,
        used_count=used_count,
        max_count=limit.max_count,
        used_sum=used_sum,
        max_sum=limit.max_sum,
        sum_param=limit.sum_param,
        would_exceed=exceed,
        on_exceed=limit.on_exceed,
    )


def decision_preview(
    *, agent: Agent, environment: str, action: str, resource: str, params: dict[str, Any]
) -> Preview:
    now = timezone.now()
    switch = halting_switch(agent_id=agent.pk, team_id=agent.team_id)
    if switch is not None:
        reason = {
            "kind": "killswitch",
            "name": "kill switch",
            "effect": "halt",
            "detail": switch.reason,
        }
        return Preview("halted", [reason], agent.policy_version)
    request = policy_request(
        agent=agent,
        environment=environment,
        action=action,
        resource=resource,
        params=params,
        now=now,
    )
    decision = compiled_policy_for(agent).decide(request)
    reasons = reason_dicts(decision)
    status = {"allow": "allowed", "deny": "denied", "hold": "pending"}[decision.outcome]
    matching = set(decision.limit_ids)
    limits = [_limit_preview(lim, params, now) for lim in limits_for(agent) if lim.pk in matching]
    if status != "denied" and environment == Environment.STAGING:
        status = "dry_run"
    elif status != "denied" and any(lim.would_exceed for lim in limits):
        worst = min(
            (lim for lim in limits if lim.would_exceed),
            key=lambda lim: ["pause", "deny", "hold"].index(lim.on_exceed),
        )
        status = "pending" if worst.on_exceed == "hold" else "denied"
    return Preview(status, reasons, decision.policy_version, decision.approvals_required, limits)
