"""The blast radius: what the scope's agents did from the break on, and how much of it can
be undone.

Counted: every action asked for in [since, until) except compensations, by its current
status. *Took effect* means allowed, approved, succeeded or rolled back since (it ran, or
may have: an allowed action whose outcome is not reported yet counts). Resources, amounts and
reversibility are of those that took effect; amounts are the ``amount`` parameter,
summed per action and currency.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Count

from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.monitoring.families import resource_family

EFFECTIVE = (
    ActionStatus.ALLOWED,
    ActionStatus.APPROVED,
    ActionStatus.SUCCEEDED,
    ActionStatus.ROLLED_BACK,
)
TOP_FAMILIES = 10


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def blast_radius(
    *, agent_ids: Sequence[int], since: dt.datetime, until: dt.datetime
) -> dict[str, Any]:
    actions = Action.objects.filter(
        agent_id__in=list(agent_ids),
        created_at__gte=since,
        created_at__lt=until,
        compensates__isnull=True,
    )
    by_status = dict(
        actions.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    effective = actions.filter(status__in=EFFECTIVE)
    resources: set[str] = set()
    families: Counter[str] = Counter()
    reversibility: Counter[str] = Counter()
    amounts: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    by_action: Counter[str] = Counter()
    rows = effective.values_list("action", "resource", "reversibility", "params")
    for action, resource, reversible, params in rows.iterator(chunk_size=5000):
        resources.add(resource)
        families[resource_family(resource)] += 1
        reversibility[reversible or "unknown"] += 1
        by_action[action] += 1
        amount = _amount(params.get("amount")) if isinstance(params, dict) else None
        if amount is not None:
            currency = str(params.get("currency") or "").lower()
            amounts[(action, currency)] += amount
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "actions": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "took_effect": sum(by_action.values()),
        "by_action": dict(by_action.most_common()),
        "resources": len(resources),
        "resource_families": dict(families.most_common(TOP_FAMILIES)),
        "amounts": [
            {"action": action, "currency": currency, "sum": str(total)}
            for (action, currency), total in sorted(amounts.items())
        ],
        "reversibility": dict(sorted(reversibility.items())),
        "reversible": reversibility.get("reversible", 0),
        "rolled_back": by_status.get(ActionStatus.ROLLED_BACK, 0),
        "still_in_effect": sum(by_action.values()) - by_status.get(ActionStatus.ROLLED_BACK, 0),
    }
