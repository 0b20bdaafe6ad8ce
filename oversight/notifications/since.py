"""What became, since, of what an inbox item asked its person to do (``inbox_items_now``).

An item records a moment and is never rewritten; the inbox reads, for the items that
asked for a decision, whether it is still wanted: a held action decided, expired or
withdrawn; a rollout approved or cancelled. One query per kind on a page, by the keys
their events carry (``action.held:<action id>``, ``rollout:<id>:awaiting_approval``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.notifications.constants import Kind


@dataclass(frozen=True)
class Since:
    """What became of it: ``state`` (for the page's markup), ``words`` ("approved"),
    and, where known, who did it and when."""

    state: str
    words: str
    by: Any = None
    at: Any = None


_ACTION_WORDS = {
    ActionStatus.REJECTED: "denied by a reviewer",
    ActionStatus.EXPIRED: "expired: nobody decided it in time",
    ActionStatus.CANCELLED: "withdrawn before anyone decided it",
    ActionStatus.HALTED: "halted by a kill switch",
}


def held_action_named(event: str) -> uuid.UUID | None:
    kind, _, rest = event.partition(":")
    if kind != Kind.ACTION_HELD:
        return None
    try:
        return uuid.UUID(rest)
    except ValueError:
        return None


def rollout_named(event: str) -> int | None:
    kind, _, rest = event.partition(":")
    pk, _, what = rest.partition(":")
    if kind != "rollout" or what != "awaiting_approval" or not pk.isdigit():
        return None
    return int(pk)


def held_actions_since(*, ids: set[uuid.UUID]) -> dict[uuid.UUID, Since]:
    """Of these held actions, those no longer waiting, and how they ended."""
    rows = Action.objects.filter(pk__in=ids).exclude(status=ActionStatus.PENDING)
    found = {}
    for pk, status in rows.values_list("pk", "status"):
        found[pk] = Since(status, _ACTION_WORDS.get(status, "approved"))
    return found


def rollouts_since(*, ids: set[int]) -> dict[int, Since]:
    """Of these rollouts, those no longer awaiting approval: approved (by whom), or
    cancelled."""
    from oversight.releases.models import Rollout, RolloutState  # releases -> notifications

    rows = (
        Rollout.objects.filter(pk__in=ids)
        .exclude(state=RolloutState.AWAITING_APPROVAL)
        .select_related("approved_by")
    )
    found = {}
    for rollout in rows:
        if rollout.state == RolloutState.CANCELLED:
            found[rollout.pk] = Since("cancelled", "cancelled", at=rollout.ended_at)
        else:
            found[rollout.pk] = Since("approved", "approved", by=rollout.approved_by)
    return found


def items_since(items: list[Any]) -> None:
    """Set ``now`` on the items that asked for a decision no longer wanted."""
    actions = {item.pk: held_action_named(item.event) for item in items}
    rollouts = {item.pk: rollout_named(item.event) for item in items}
    action_ids = {pk for pk in actions.values() if pk}
    rollout_ids = {pk for pk in rollouts.values() if pk}
    action_now = held_actions_since(ids=action_ids) if action_ids else {}
    rollout_now = rollouts_since(ids=rollout_ids) if rollout_ids else {}
    for item in items:
        action, rollout = actions[item.pk], rollouts[item.pk]
        if action in action_now:
            item.now = action_now[action]
        elif rollout in rollout_now:
            item.now = rollout_now[rollout]
