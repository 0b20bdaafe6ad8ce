"""The scope's behaviour as a series of buckets (a minute each by default), read from the
gateway's actions: what was asked, how it ended, on what kind of resource.

Left out: compensations (undo is a response, not behaviour) and actions halted by a kill
switch (the switch, not the agent, decided them).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.incidents.analysis.changepoint import Bucket
from oversight.monitoring.families import resource_family

# At most this many categories and resource kinds are told apart; the rest are "other".
MAX_CATEGORIES = 40
MAX_KINDS = 20
OTHER = "other"


def outcome(decision: str, status: str) -> str:
    """How an action ended, for the behaviour series."""
    if status == ActionStatus.FAILED:
        return "failed"
    if status == ActionStatus.REJECTED:
        return "rejected"
    if decision == ActionStatus.DENIED:
        return "denied"
    if decision == ActionStatus.PENDING:
        return "held"
    return "allowed"


def category(action: str, decision: str, status: str) -> str:
    return f"{action} {outcome(decision, status)}"


def category_action(name: str) -> str:
    return name.rsplit(" ", 1)[0]


@dataclass(frozen=True)
class Series:
    start: dt.datetime
    bucket_seconds: int
    buckets: list[Bucket]

    def at(self, index: int) -> dt.datetime:
        return self.start + dt.timedelta(seconds=index * self.bucket_seconds)

    def index_of(self, moment: dt.datetime) -> int:
        """The first bucket that starts at or after ``moment``: a change made during a
        bucket shows from the next one on."""
        seconds = (moment - self.start).total_seconds()
        whole = int(seconds // self.bucket_seconds)
        return whole if seconds == whole * self.bucket_seconds else whole + 1


def scope_actions(agent_ids: Sequence[int], start: dt.datetime, end: dt.datetime) -> Action:
    return Action.objects.filter(
        agent_id__in=list(agent_ids),
        created_at__gte=start,
        created_at__lt=end,
        compensates__isnull=True,
    ).exclude(decision=ActionStatus.HALTED)


def behaviour_series(
    *, agent_ids: Sequence[int], start: dt.datetime, end: dt.datetime, bucket_seconds: int
) -> Series:
    count = max(1, int((end - start).total_seconds() // bucket_seconds))
    buckets = [Bucket() for _ in range(count)]
    rows = scope_actions(agent_ids, start, end).values_list(
        "created_at", "action", "decision", "status", "resource"
    )
    for created_at, action, decision, status, resource in rows.iterator(chunk_size=5000):
        index = min(int((created_at - start).total_seconds() // bucket_seconds), count - 1)
        bucket = buckets[index]
        bucket.categories[category(action, decision, status)] += 1
        bucket.kinds[resource_family(resource)] += 1
    _cap(buckets, "categories", MAX_CATEGORIES)
    _cap(buckets, "kinds", MAX_KINDS)
    return Series(start=start, bucket_seconds=bucket_seconds, buckets=buckets)


def _cap(buckets: list[Bucket], part: str, most: int) -> None:
    totals: Counter[str] = Counter()
    for bucket in buckets:
        totals.update(getattr(bucket, part))
    if len(totals) <= most:
        return
    keep = {key for key, _ in totals.most_common(most - 1)}
    for bucket in buckets:
        counts: Counter[str] = getattr(bucket, part)
        capped: Counter[str] = Counter()
        for key, value in counts.items():
            capped[key if key in keep else OTHER] += value
        setattr(bucket, part, capped)
