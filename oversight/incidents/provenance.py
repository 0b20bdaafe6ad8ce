"""What decided an action, from the records the decision left: one read for its page and
for the people's API (``GET /api/v1/provenance/{action_id}``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.urls import reverse

from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.policy.models import Limit, LimitCounter
from oversight.releases.models import Release


def _trace(action: Action) -> dict[str, Any] | None:
    if not action.traceparent:
        return None
    trace_id = action.traceparent.split("-")[1]
    template = action.agent.team.trace_url
    return {
        "traceparent": action.traceparent,
        "trace_id": trace_id,
        "url": template.replace("{trace_id}", trace_id) if template else None,
    }


# Statuses whose charges were given back (limits_release) when the action ended.
RELEASED = (ActionStatus.EXPIRED, ActionStatus.CANCELLED, ActionStatus.REJECTED)


def _at_decision(action: Action, counter: LimitCounter) -> tuple[int, Decimal]:
    """The counter's count and sum right after this action was charged: every charge to
    it up to this one, less those given back before it."""
    count, total = 0, Decimal(0)
    charged = Action.objects.filter(
        created_at__gte=counter.window_start, created_at__lte=action.created_at
    ).values_list("limit_usage", "status", "finished_at")
    for usage, status, finished_at in charged.iterator(chunk_size=2000):
        if status in RELEASED and finished_at is not None and finished_at < action.created_at:
            continue
        for used in usage or []:
            if used.get("counter_id") == counter.pk:
                count += 1
                total += Decimal(str(used.get("amount") or 0))
    return count, total


def _limits(action: Action) -> list[dict[str, Any]]:
    """Each limit the decision charged: what it is, what this action counted, the window's
    count and sum when it was decided, and now."""
    usage = action.limit_usage or []
    limits = Limit.objects.in_bulk([u["limit_id"] for u in usage])
    counters = LimitCounter.objects.in_bulk([u["counter_id"] for u in usage])
    rows = []
    for used in usage:
        limit, counter = limits.get(used["limit_id"]), counters.get(used["counter_id"])
        then = _at_decision(action, counter) if counter else None
        rows.append(
            {
                "limit": limit.name if limit else f"limit {used['limit_id']} (deleted)",
                "max_count": limit.max_count if limit else None,
                "max_sum": str(limit.max_sum) if limit and limit.max_sum is not None else None,
                "sum_param": limit.sum_param if limit else "",
                "window_seconds": limit.window_seconds if limit else None,
                "charged": used["amount"],
                "window_start": counter.window_start.isoformat() if counter else None,
                "count_at_decision": then[0] if then else None,
                "total_at_decision": str(then[1]) if then else None,
                "count_now": counter.count if counter else None,
                "total_now": str(counter.total) if counter else None,
            }
        )
    return rows


def _release(action: Action, version: int | None) -> dict[str, Any] | None:
    if version is None:
        return None
    release = Release.objects.filter(agent_id=action.agent_id, version=version).first()
    return {
        "version": version,
        "digest": release.digest if release else None,
        "url": reverse("releases:detail", args=[action.agent.slug, version]),
    }


def action_provenance(*, action: Action) -> dict[str, Any]:
    """Release, policy version, the grants, rules and limits that decided it (with the
    limits' windows), the voters, session, trace, reversibility and undo links."""
    votes = action.votes.select_related("voter").order_by("created_at")
    return {
        "id": str(action.pk),
        "agent": action.agent.slug,
        "action": action.action,
        "resource": action.resource,
        "status": action.status,
        "decision": action.decision,
        "environment": action.environment,
        "created_at": action.created_at.isoformat(),
        "session_id": action.session_id,
        "parent_id": str(action.parent_id) if action.parent_id else None,
        "policy_version": action.policy_version,
        "release": _release(action, action.release_version),
        "shadow": {
            "release": _release(action, action.shadow_version),
            "status": action.shadow_status,
            "reasons": action.shadow_reasons or [],
        }
        if action.shadow_version
        else None,
        "reasons": action.reasons,
        "limits": _limits(action),
        "voters": [
            {
                "voter": vote.voter.get_username(),
                "vote": vote.vote,
                "comment": vote.comment,
                "superseded": vote.superseded,
                "at": vote.created_at.isoformat(),
            }
            for vote in votes
        ],
        "reversibility": action.reversibility or None,
        "undo": action.undo_contract,
        "compensates": str(action.compensates_id) if action.compensates_id else None,
        "compensations": [str(pk) for pk in action.compensations.values_list("pk", flat=True)],
        "trace": _trace(action),
    }
