"""Rank the scope's changes as candidate causes of the break, each with its evidence.

Three things are weighed for each change made before the break (or within a bucket
after it: the break is found to the bucket):

- **effect**: how sharply behaviour changed at the change itself, the ``G`` of splitting
  the series at the change as a share of the ``G`` at the break (1: the change is where
  behaviour changed most);
- **scope fit**: the share of the break's change in *what* the agent did (its categories,
  each an action and how it ended) that falls on actions the change touches. A change
  that can touch anything (instructions, owner) fits everything, but less sharply
  (``BROAD_FIT``): a change naming exactly the actions that changed is the better
  explanation;
- **time fit**: ``exp(-gap / TIME_SCALE)``, the gap in buckets from the change to the
  break; a change made after the break point is kept (the break is an estimate, and
  traffic slowed by something else can move it) but fades fast, ``exp(gap / AFTER_SCALE)``.

``score = weight x (W_EFFECT effect + W_SCOPE scope + W_TIME time)``, where ``weight`` is
how directly the change's kind steers behaviour (changes.py). bench/rca.py measures how
often the true cause comes first.

Without a break (too little traffic to split the series) there is nothing to measure a
change against: its effect is 0, its scope fit only whether it is broad, its time fit and
its wording are from the incident's opening, and nothing is said about a break.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from oversight.incidents.analysis.changepoint import Split, split_at
from oversight.incidents.analysis.changes import Change
from oversight.incidents.analysis.series import Series, category_action

BROAD_FIT = 0.7
TIME_SCALE = 20.0  # buckets
W_EFFECT, W_SCOPE, W_TIME = 0.4, 0.4, 0.2
# The break is found to the bucket: a change this many buckets after it fits as well as
# one at it; later ones fade with AFTER_SCALE.
GRACE_BUCKETS = 1
AFTER_SCALE = 3.0
EVIDENCE_ROWS = 4


@dataclass(frozen=True)
class Candidate:
    change: Change
    score: float
    effect: float
    scope_fit: float
    time_fit: float
    gap_buckets: int
    evidence: list[dict[str, Any]]
    explained: list[str]
    # Buckets from the change to the break; None when no break was found.
    break_gap: int | None
    seconds_before_opening: float

    def as_json(self, series: Series) -> dict[str, Any]:
        return {
            **self.change.as_json(),
            "score": round(self.score, 4),
            "effect": round(self.effect, 4),
            "scope_fit": round(self.scope_fit, 4),
            "time_fit": round(self.time_fit, 4),
            "minutes_before_break": (
                None
                if self.break_gap is None
                else round(self.break_gap * series.bucket_seconds / 60, 2)
            ),
            "minutes_before_opening": round(self.seconds_before_opening / 60, 2),
            "evidence": self.evidence,
            "why": self.explained,
        }


def touches(change: Change, action: str) -> bool:
    return any(fnmatchcase(action, pattern) for pattern in change.touches)


def _category_terms(split: Split) -> dict[str, float]:
    return {
        key: value
        for key, value in split.terms.items()
        if value > 0 and key != "volume" and not key.startswith("kind:")
    }


def scope_fit(change: Change, split: Split) -> float:
    terms = _category_terms(split)
    if change.broad:
        return BROAD_FIT
    total = sum(terms.values())
    if total <= 0:
        return 0.3 * BROAD_FIT
    return sum(v for k, v in terms.items() if touches(change, category_action(k))) / total


def _shares(series: Series, index: int, skip: int | None) -> tuple[Counter[str], Counter[str]]:
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    for i, bucket in enumerate(series.buckets):
        if i != skip:
            (before if i < index else after).update(bucket.categories)
    return before, after


def _evidence(change: Change, series: Series, split: Split) -> list[dict[str, Any]]:
    """The categories that moved most at the change (those it touches first): their
    counts and shares before and after it. The bucket the change was made in, which
    holds actions from both sides of it, is in neither (``split`` is just after it)."""
    made_in = split.index - 1  # the bucket before the split, if the change is inside it
    during = made_in if series.at(made_in) < change.at < series.at(split.index) else None
    before, after = _shares(series, split.index, during)
    b_total, a_total = max(sum(before.values()), 1), max(sum(after.values()), 1)
    terms = _category_terms(split)
    ranked = sorted(terms, key=lambda k: (not touches(change, category_action(k)), -terms[k]))
    return [
        {
            "what": key,
            "before": before.get(key, 0),
            "after": after.get(key, 0),
            "share_before": round(before.get(key, 0) / b_total, 4),
            "share_after": round(after.get(key, 0) / a_total, 4),
        }
        for key in ranked[:EVIDENCE_ROWS]
    ]


def span(seconds: float) -> str:
    """A duration as people read it: "45 s", "1 min 19 s" under ten minutes, then whole
    minutes rounded half up ("12 min"), so two different spans never read alike by one
    rounding down and the other up."""
    whole = int(abs(seconds) + 0.5)
    if whole < 60:
        return f"{whole} s"
    if whole < 600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{int(whole / 60 + 0.5)} min"


def _when(gap: int, seconds: float, *, mark: str, at_mark: str, after: str) -> str:
    """When it was made against the mark (the break, or the opening): ``gap`` in buckets
    decides before, at or after; ``seconds`` is how long, by the clock."""
    if gap == 0:
        return f"made as {at_mark}"
    if gap > 0:
        return f"made {span(seconds)} before {mark}"
    return f"made {span(seconds)} after {mark}{after}"


def _touches(change: Change, fit: float | None) -> str:
    if change.broad:
        return "can affect anything the agent does"
    touched = f"touches {', '.join(sorted(change.touches))}"
    return touched if fit is None else f"{touched}: {fit:.0%} of what changed"


def _why(change: Change, effect: float, fit: float, gap: int, seconds: float) -> list[str]:
    return [
        _when(
            gap,
            seconds,
            mark="the break",
            at_mark="behaviour changed",
            after=" point (within its precision)",
        ),
        _touches(change, fit),
        f"behaviour changed at it with {effect:.0%} of the break's strength",
    ]


def _why_without_break(change: Change, gap: int, seconds: float) -> list[str]:
    """No break to be before or after, nor a strength at it: only when it was made
    against the opening (an instant, so told by the clock, not by its bucket: a change
    37 s after it, in the bucket before, read "37 s before"), and what it touches."""
    del gap
    clock = 0 if abs(seconds) < 1 else (1 if seconds > 0 else -1)
    return [
        _when(clock, seconds, mark="the incident opened", at_mark="the incident opened", after=""),
        _touches(change, None),
    ]


def rank(
    series: Series, split: Split | None, changes: list[Change], *, opened: dt.datetime
) -> list[Candidate]:
    """Every change in the window, best first. Without a break (too little traffic to
    split) the changes are still listed, by kind and time from the opening, each with no
    effect."""
    n = len(series.buckets)
    found = split is not None
    if split is None:
        split = Split(index=n, g=0.0, terms={}, clear=False)
    opened_index = series.index_of(opened)
    break_at = series.at(split.index)
    ranked = []
    peak = max(split.g, 1e-9)
    for change in changes:
        # A change made in the last, unfinished bucket splits just before it.
        index = min(series.index_of(change.at), n - 1)
        if index < 0:
            continue
        at_change = split_at(series.buckets, min(max(index, 1), n - 1))
        gap = split.index - index if found else opened_index - index
        effect = min(at_change.g / peak, 1.0) if found else 0.0
        fit = scope_fit(change, split)
        time_fit = (
            math.exp(-max(gap, 0) / TIME_SCALE)
            if gap >= -GRACE_BUCKETS
            else math.exp((gap + GRACE_BUCKETS) / AFTER_SCALE)
        )
        score = change.weight * (W_EFFECT * effect + W_SCOPE * fit + W_TIME * time_fit)
        before_opening = (opened - change.at).total_seconds()
        ranked.append(
            Candidate(
                change=change,
                score=score,
                effect=effect,
                scope_fit=fit,
                time_fit=time_fit,
                gap_buckets=gap,
                evidence=_evidence(change, series, at_change),
                explained=(  # a weak break is no break to speak of (report.py)
                    _why(change, effect, fit, gap, (break_at - change.at).total_seconds())
                    if found and split.clear
                    else _why_without_break(change, opened_index - index, before_opening)
                ),
                break_gap=gap if found else None,
                seconds_before_opening=before_opening,
            )
        )
    ranked.sort(key=lambda c: (-c.score, -c.change.at.timestamp()))
    return ranked
