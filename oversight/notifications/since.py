"""What became, since, of what an inbox item asked its person to do (``inbox_items_now``).

An item records a moment and is never rewritten (a digest is rewritten only when it is
told again); the inbox reads, for the items that asked for a decision, whether it is
still wanted: a held action decided, expired or withdrawn; a rollout or a rewind
approved or cancelled; a rollout that waited for a person moved on; how many of a
digest's held actions wait now. One query per kind on a page, by the keys their events
carry (``action.held:<action id>``, ``rollout:<id>:awaiting_approval``,
``rewind:<id>:awaiting_approval``, ``rollout:<id>:waiting:<stage>:<step>:<stage began>``,
``action.held.digest:<agent id>:<window>``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from oversight.gateway.constants import BY_THE_AGENT, ActionStatus
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
    along: tuple[Any, ...] = ()  # the others who approved with ``by`` (two to approve)
    still: bool = False  # it still waits for its person, in part (a digest's count now)

    def involves(self, user: Any) -> bool:
        """Whether ``user`` is among those who did it."""
        return any(p is not None and p.pk == user.pk for p in (self.by, *self.along))


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


def _awaiting(noun: str) -> Callable[[str], int | None]:
    """The id in ``<noun>:<id>:awaiting_approval``, else None."""

    def named(event: str) -> int | None:
        kind, _, rest = event.partition(":")
        pk, _, what = rest.partition(":")
        if kind != noun or what != "awaiting_approval" or not pk.isdigit():
            return None
        return int(pk)

    return named


def held_actions_since(*, ids: set[Any]) -> dict[Any, Since]:
    """Of these held actions, those no longer waiting, and how they ended: denied or
    approved by whom (the vote that decided it: the first deny, or the approval that
    made the count) and when, where a vote decided it."""
    from oversight.approvals.models import ApprovalVote, Vote  # approvals -> notifications

    rows = Action.objects.filter(pk__in=ids).exclude(status=ActionStatus.PENDING)
    ended, why = {}, {}
    for pk, status, error in rows.values_list("pk", "status", "error"):
        ended[pk], why[pk] = status, error
    # Denied by a vote, or approved (and perhaps run since): not expired, withdrawn, halted.
    wanted = {
        pk: Vote.DENY if status == ActionStatus.REJECTED else Vote.APPROVE
        for pk, status in ended.items()
        if status == ActionStatus.REJECTED or status not in _ACTION_WORDS
    }
    votes = ApprovalVote.objects.filter(action_id__in=wanted, superseded=False)
    deciding: dict[Any, ApprovalVote] = {}
    earlier: dict[Any, list[Any]] = {}  # who approved before the approval that made the count
    for vote in votes.select_related("voter").order_by("created_at"):
        if vote.vote != wanted[vote.action_id]:
            continue
        if vote.vote == Vote.APPROVE and vote.action_id in deciding:
            earlier.setdefault(vote.action_id, []).append(deciding[vote.action_id].voter)
        if vote.vote == Vote.APPROVE or vote.action_id not in deciding:
            deciding[vote.action_id] = vote
    found = {}
    for pk, status in ended.items():
        words = _ACTION_WORDS.get(status, "approved")
        if status == ActionStatus.CANCELLED and why[pk] and why[pk] != BY_THE_AGENT:
            words = f"cancelled ({why[pk][:200]})"  # a kill switch, a tool's change
        vote = deciding.get(pk)
        if vote is None:
            found[pk] = Since(status, words)
        else:
            words = "denied" if vote.vote == Vote.DENY else words
            along = tuple(earlier.get(pk, ()))
            found[pk] = Since(status, words, by=vote.voter, at=vote.created_at, along=along)
    return found


def _approved_or_cancelled(rows: Any, cancelled: str, ended: str) -> dict[Any, Since]:
    found = {}
    for row in rows.select_related("approved_by"):
        if row.state == cancelled:
            found[row.pk] = Since("cancelled", "cancelled", at=getattr(row, ended))
        else:
            found[row.pk] = Since("approved", "approved", by=row.approved_by)
    return found


def rollouts_since(*, ids: set[Any]) -> dict[Any, Since]:
    """Of these rollouts, those no longer awaiting approval: approved (by whom), or
    cancelled."""
    from oversight.releases.models import Rollout, RolloutState  # releases -> notifications

    waiting = RolloutState.AWAITING_APPROVAL
    rows = Rollout.objects.filter(pk__in=ids).exclude(state=waiting)
    return _approved_or_cancelled(rows, RolloutState.CANCELLED, "ended_at")


def _waiting_rollout(event: str) -> tuple[int, str, str] | None:
    """``rollout:<id>:waiting:<stage>:<step>:<stage began>`` as (id, "<stage>:<step>",
    began), else None."""
    parts = event.split(":", 5)
    if len(parts) != 6 or parts[0] != "rollout" or parts[2] != "waiting":
        return None
    if not parts[1].isdigit():
        return None
    return int(parts[1]), f"{parts[3]}:{parts[4]}", parts[5]


def waiting_rollouts_since(*, ids: set[Any]) -> dict[Any, Since]:
    """Of these rollouts, waiting for a person at a stage the guard could not judge
    (``(id, stage, began)``), those no longer there: advanced, resumed (the stage counts
    again), paused, rolled back, completed or cancelled."""
    from oversight.releases.models import Rollout, RolloutState  # releases -> notifications

    rows = {row.pk: row for row in Rollout.objects.filter(pk__in={key[0] for key in ids})}
    found = {}
    for key in ids:
        row = rows.get(key[0])
        if row is None:
            continue
        began = row.stage_started_at or row.created_at
        where = f"{row.stage}:{row.step}"
        if row.state == RolloutState.RUNNING and (where, began.isoformat()) == key[1:]:
            continue  # still where it waited
        if row.state != RolloutState.RUNNING:
            words = row.get_state_display().lower()
        elif where == key[1]:
            words = "resumed; the stage counts its decisions again"
        else:
            share = f" {row.share_percent:g}%" if row.stage == "canary" else ""
            words = f"advanced to {row.get_stage_display().lower()}{share}"
        found[key] = Since(row.state, words, at=row.ended_at)
    return found


def rewinds_since(*, ids: set[Any]) -> dict[Any, Since]:
    """Of these rewinds, those no longer awaiting approval: approved (by whom), or
    cancelled."""
    from oversight.rewind.models import Rewind, RewindState  # rewind -> notifications

    rows = Rewind.objects.filter(pk__in=ids).exclude(state=RewindState.AWAITING_APPROVAL)
    return _approved_or_cancelled(rows, RewindState.CANCELLED, "finished_at")


def _digest(event: str) -> int | None:
    """The agent's id in ``action.held.digest:<agent id>:<window>``, else None."""
    kind, _, rest = event.partition(":")
    pk = rest.partition(":")[0]
    return int(pk) if kind == Kind.ACTIONS_WAITING and pk.isdigit() else None


def digests_since(*, ids: set[Any]) -> dict[Any, Since]:
    """A digest counted the agent's held actions when it was last told; how many wait
    now (fewer once people decided them, none when all are decided)."""
    pending = Action.objects.filter(agent_id__in=ids, status=ActionStatus.PENDING)
    counts = dict(pending.values("agent_id").annotate(n=Count("pk")).values_list("agent_id", "n"))
    found = {}
    for pk in ids:
        n = counts.get(pk, 0)
        if n:
            found[pk] = Since("waiting", f"{n} {'waits' if n == 1 else 'wait'} now", still=True)
        else:
            found[pk] = Since("decided", "none of them waits now")
    return found


_KINDS: tuple[tuple[Callable[[str], Any], Callable[..., dict[Any, Since]]], ...] = (
    (held_action_named, held_actions_since),
    (_awaiting("rollout"), rollouts_since),
    (_awaiting("rewind"), rewinds_since),
    (_waiting_rollout, waiting_rollouts_since),
    (_digest, digests_since),
)


def items_since(items: list[Any]) -> None:
    """Set ``now`` on the items that asked for a decision no longer wanted: ended, or, for
    a held action that needs more than one approval, approved by the item's own person
    already (``_voted``)."""
    for named, since in _KINDS:
        keys = {item.pk: named(item.event) for item in items}
        ids = {key for key in keys.values() if key is not None}
        now = since(ids=ids) if ids else {}
        for item in items:
            if keys[item.pk] in now:
                item.now = now[keys[item.pk]]
    _voted([item for item in items if getattr(item, "now", None) is None])


def _voted(items: list[Any]) -> None:
    """A held action still waiting that the item's person has approved: it waits for
    another person's approval, not for theirs (one query)."""
    from oversight.approvals.models import ApprovalVote, Vote  # approvals -> notifications

    keys = {item.pk: held_action_named(item.event) for item in items}
    ids = {key for key in keys.values() if key is not None}
    if not ids:
        return
    votes = ApprovalVote.objects.filter(
        action_id__in=ids,
        voter_id__in={item.user_id for item in items},
        vote=Vote.APPROVE,
        superseded=False,
        action__status=ActionStatus.PENDING,
    )
    when = {(a, v): at for a, v, at in votes.values_list("action_id", "voter_id", "created_at")}
    for item in items:
        at = when.get((keys[item.pk], item.user_id))
        if at is not None:
            item.now = Since("voted", "", at=at)
