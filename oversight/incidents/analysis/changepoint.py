"""When did behaviour change? A single change point in a series of buckets, by likelihood
ratio. Pure Python (standard library only): no models.

Each bucket (a minute by default) holds counts of *what happened*: categories such as
``payments.refund|allowed`` (the action and how it ended), resource kinds such as
``stripe:charge``, and the number of actions. Split the series at bucket ``s``; the
statistic ``G(s)`` is twice the log likelihood ratio of "the two sides differ" against
"one process throughout", summed over three parts:

- the category mix, multinomial: ``2 * sum_k [a_k ln(a_k / (A p_k)) + b_k ln(b_k / (B p_k))]``
  with ``a``, ``b`` the counts before and after, ``A``, ``B`` their totals and ``p`` the
  pooled shares (the G-test of homogeneity);
- the resource-kind mix, the same way;
- the volume, Poisson: the rate per active bucket before and after against one rate,
  weighted by ``VOLUME_WEIGHT``.

The break is the split with the largest ``G``. It is *clear* when ``G`` exceeds a BIC
penalty, ``df * ln(N)`` (``df`` the parameters the split adds, ``N`` the actions), which
grows with the sample so that noise in a large series is not called a break.

Each category's share of ``G`` says *what* changed: the analysis compares it with what a
candidate cause touches (causes.py).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

# A break needs at least this many buckets on each side.
MIN_SEGMENT = 3
# The volume's term counts half: how many actions arrive also moves with things that are
# not the agent's behaviour (a slow downstream, a busy server).
VOLUME_WEIGHT = 0.5


@dataclass
class Bucket:
    """What happened in one bucket of the scope."""

    categories: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.categories.values())


@dataclass(frozen=True)
class Split:
    index: int  # the first bucket after the change
    g: float
    # Each category's (and resource kind's, prefixed "kind:") term of G, and the volume's.
    terms: dict[str, float]
    clear: bool


def _xlogx_ratio(count: float, expected: float) -> float:
    return count * math.log(count / expected) if count > 0 and expected > 0 else 0.0


def g_mix(before: Counter[str], after: Counter[str]) -> dict[str, float]:
    """Each key's term of the G-test of homogeneity between two count vectors."""
    a_total, b_total = sum(before.values()), sum(after.values())
    if a_total == 0 or b_total == 0:
        return {}
    total = a_total + b_total
    terms = {}
    for key in before.keys() | after.keys():
        a, b = before.get(key, 0), after.get(key, 0)
        pooled = (a + b) / total
        terms[key] = 2 * (_xlogx_ratio(a, a_total * pooled) + _xlogx_ratio(b, b_total * pooled))
    return terms


def g_rate(n1: int, t1: int, n2: int, t2: int) -> float:
    """Poisson: counts n1 over t1 buckets against n2 over t2, one rate against two."""
    if t1 == 0 or t2 == 0 or n1 + n2 == 0:
        return 0.0
    pooled = (n1 + n2) / (t1 + t2)
    return 2 * (_xlogx_ratio(n1, t1 * pooled) + _xlogx_ratio(n2, t2 * pooled))


@dataclass
class _Side:
    categories: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    actions: int = 0
    active: int = 0  # buckets with any action

    def add(self, bucket: Bucket, sign: int = 1) -> None:
        for key, count in bucket.categories.items():
            self.categories[key] += sign * count
        for key, count in bucket.kinds.items():
            self.kinds[key] += sign * count
        total = bucket.total
        self.actions += sign * total
        self.active += sign * (1 if total else 0)


def _whole(buckets: Sequence[Bucket]) -> _Side:
    side = _Side()
    for bucket in buckets:
        side.add(bucket)
    return side


def _g(before: _Side, after: _Side, index: int, penalty: float) -> Split:
    terms = g_mix(+before.categories, +after.categories)
    kinds = g_mix(+before.kinds, +after.kinds)
    terms.update({f"kind:{key}": value for key, value in kinds.items()})
    terms["volume"] = VOLUME_WEIGHT * g_rate(
        before.actions, before.active, after.actions, after.active
    )
    g = sum(terms.values())
    return Split(index=index, g=g, terms=terms, clear=g > penalty)


def _penalty(whole: _Side) -> float:
    df = max(len(+whole.categories) - 1, 0) + max(len(+whole.kinds) - 1, 0) + 1
    return df * math.log(max(whole.actions, 2))


def split_at(buckets: Sequence[Bucket], index: int) -> Split:
    """``G`` for a change just before bucket ``index``."""
    whole = _whole(buckets)
    before = _whole(buckets[:index])
    after = _whole(buckets[index:])
    return _g(before, after, index, _penalty(whole))


def best_split(buckets: Sequence[Bucket], *, min_segment: int = MIN_SEGMENT) -> Split | None:
    """The split with the largest ``G`` (the earliest on a tie); None when the series is
    too short to split. One pass: the sides are moved a bucket at a time."""
    if len(buckets) < 2 * min_segment:
        return None
    whole = _whole(buckets)
    penalty = _penalty(whole)
    before, after = _whole(buckets[:min_segment]), _whole(buckets[min_segment:])
    best: Split | None = None
    for index in range(min_segment, len(buckets) - min_segment + 1):
        if index > min_segment:
            before.add(buckets[index - 1])
            after.add(buckets[index - 1], -1)
        found = _g(before, after, index, penalty)
        if best is None or found.g > best.g:
            best = found
    return best
