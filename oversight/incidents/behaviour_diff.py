"""The behaviour diff: how an agent behaved on one side against the other (two releases,
or two windows such as before and after a moment), and which differences are real.

Compared: the action mix (each action's share of decisions), the decision mix (each first
decision's share: allowed, denied, held, halted, dry run), the failure rate (failed among
the actions that ran and reported an outcome), the reviewer rejection rate (rejected
among held actions a reviewer answered), each numeric param's distribution per action
(count, mean, p50, p90, max), and the resource families' shares. An action or family
seen on one side only is marked so.

Every difference carries its test and p-value (diff_stats.py). It is ``flagged`` only
when both sides have at least ``MIN_SAMPLE`` of what it counts (decisions for a mix,
outcomes for the failure rate, answered holds for the rejection rate, values for a
param) and it stays significant after Holm's correction over all the diff's
comparisons that had that sample, at family-wise level ``ALPHA``.

Compensations (undo actions a person's rewind asked for) are left out: they are not
the agent's own choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

from oversight.agents.constants import Environment
from oversight.agents.models import Agent
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.incidents import diff_queries
from oversight.incidents.diff_stats import (
    Significance,
    holm_adjusted,
    kolmogorov_smirnov,
    two_proportions,
)
from oversight.releases.guard_stats import Arm
from oversight.releases.selectors import same_content_versions

# Both sides need at least this many of what a comparison counts before it may be flagged.
MIN_SAMPLE = 30
# The chance of flagging anything at all when nothing changed (Holm, family-wise).
ALPHA = 0.01

_RAN = (ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.ROLLED_BACK)
_ANSWERED = (ActionStatus.APPROVED, ActionStatus.REJECTED, *_RAN)


class SideError(ValueError):
    """Not a side this understands; the message says what is, ``field`` which input."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Side:
    """The decisions under one release version of the agent, or those made in a window
    [start, end); in one environment (production unless given; None: every one)."""

    version: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    environment: str | None = Environment.PRODUCTION

    def __post_init__(self) -> None:
        window = self.start is not None or self.end is not None
        if (self.version is None) == (not window):
            raise SideError("A side is a release version or a window, not both or neither.")
        if window and (self.start is None or self.end is None or self.start >= self.end):
            raise SideError("A window needs a start before its end.")

    @classmethod
    def release(cls, version: int, *, environment: str | None = Environment.PRODUCTION) -> Side:
        return cls(version=version, environment=environment)

    @classmethod
    def window(
        cls, start: datetime, end: datetime, *, environment: str | None = Environment.PRODUCTION
    ) -> Side:
        return cls(start=start, end=end, environment=environment)

    @property
    def label(self) -> str:
        """As people read it: "v3", or "2026-12-01 10:00 → 11:00 UTC"."""
        if self.version is not None:
            return f"v{self.version}"
        assert self.start is not None and self.end is not None
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        fmt = "%H:%M:%S" if start.second or end.second else "%H:%M"
        tail = end.strftime(fmt) if start.date() == end.date() else end.strftime(f"%Y-%m-%d {fmt}")
        return f"{start.strftime(f'%Y-%m-%d {fmt}')} → {tail} UTC"

    @property
    def query(self) -> str:
        """What ``side_parse`` reads back: "v3", or "<start>/<end>" in ISO 8601 UTC."""
        if self.version is not None:
            return f"v{self.version}"
        assert self.start is not None and self.end is not None
        return "/".join(
            m.astimezone(UTC).isoformat().replace("+00:00", "Z") for m in (self.start, self.end)
        )


def sides_around(
    moment: datetime,
    *,
    before: timedelta,
    after: timedelta | None = None,
    environment: str | None = Environment.PRODUCTION,
) -> tuple[Side, Side]:
    """The windows just before and just after a moment (an incident's break point); the
    one after as long as the one before unless ``after`` says otherwise."""
    return (
        Side.window(moment - before, moment, environment=environment),
        Side.window(moment, moment + (after or before), environment=environment),
    )


@dataclass(frozen=True)
class Difference:
    """A proportion on both sides: an action's or a family's share of decisions, a first
    decision's share, the failure or rejection rate. ``only`` is "left" or "right" when
    the thing was seen on that side only."""

    kind: str
    name: str
    left: Arm
    right: Arm
    significance: Significance
    enough: bool
    only: str = ""
    p_adjusted: float = 1.0
    flagged: bool = False

    @property
    def difference(self) -> float:
        return self.right.rate - self.left.rate


@dataclass(frozen=True)
class Distribution:
    """One side's values of a numeric param (all None when it has none)."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    max: float | None


@dataclass(frozen=True)
class ParamDifference:
    action: str
    key: str
    left: Distribution
    right: Distribution
    significance: Significance
    enough: bool
    p_adjusted: float = 1.0
    flagged: bool = False

    @property
    def kind(self) -> str:
        return "param"

    @property
    def name(self) -> str:
        return f"{self.action} params.{self.key}"


@dataclass(frozen=True)
class SideSummary:
    side: Side
    label: str
    decisions: int


@dataclass(frozen=True)
class BehaviourDiff:
    agent: str
    left: SideSummary
    right: SideSummary
    actions: list[Difference]
    decisions: list[Difference]
    rates: list[Difference]
    families: list[Difference]
    params: list[ParamDifference]
    comparisons: int  # how many had the sample: Holm's m
    alpha: float = ALPHA
    min_sample: int = MIN_SAMPLE
    flagged: list[Difference | ParamDifference] = field(default_factory=list)

    def only(self, kind: str, side: str) -> list[str]:
        """The names of actions or families seen on that side only, most used first."""
        rows = self.actions if kind == "action" else self.families
        return [row.name for row in rows if row.only == side]


def side_decisions(*, agent: Agent, side: Side) -> QuerySet[Action]:
    """The agent's own decisions on one side (compensations left out)."""
    found = Action.objects.filter(agent=agent, compensates__isnull=True)
    if side.environment:
        found = found.filter(environment=side.environment)
    if side.version is not None:
        # A version made by a rollback decides as the release it restored: one history.
        versions = same_content_versions(agent_id=agent.pk, version=side.version)
        return found.filter(Q(release_version=side.version) | Q(release_version__in=versions))
    return found.filter(created_at__gte=side.start, created_at__lt=side.end)


def _shares(
    kind: str, left: dict[str, int], right: dict[str, int], n: tuple[int, int]
) -> list[Difference]:
    rows = []
    for name in sorted(set(left) | set(right)):
        a, b = Arm(left.get(name, 0), n[0]), Arm(right.get(name, 0), n[1])
        only = "left" if not b.hits else "right" if not a.hits else ""
        rows.append(_difference(kind, name, a, b, only=only))
    return rows


def _difference(kind: str, name: str, left: Arm, right: Arm, only: str = "") -> Difference:
    enough = min(left.n, right.n) >= MIN_SAMPLE
    return Difference(kind, name, left, right, two_proportions(left, right), enough, only)


def _sum(rows: list[diff_queries.MixRow], key: str) -> dict[str, int]:
    """Decisions per action or per first decision (blank in rows older than the field)."""
    found: dict[str, int] = {}
    for row in rows:
        name = getattr(row, key) or "not recorded"
        found[name] = found.get(name, 0) + row.count
    return found


def _rate(
    kind: str,
    mixes: list[list[diff_queries.MixRow]],
    *,
    hit: str,
    out_of: tuple[str, ...],
    held_only: bool = False,
) -> Difference:
    """``hit`` among the decisions whose status is in ``out_of`` (and that were held)."""
    arms = []
    for rows in mixes:
        counted = [
            r
            for r in rows
            if r.status in out_of and (not held_only or r.decision == ActionStatus.PENDING)
        ]
        arms.append(
            Arm(sum(r.count for r in counted if r.status == hit), sum(r.count for r in counted))
        )
    return _difference(kind, kind, arms[0], arms[1])


def _distribution(row: diff_queries.ParamRow, i: int) -> Distribution:
    count = row.counts[i]
    mean = row.sums[i] / count if count else None
    return Distribution(count, mean, row.p50[i], row.p90[i], row.maxima[i])


def _params(left: QuerySet[Action], right: QuerySet[Action]) -> list[ParamDifference]:
    rows = []
    for row in diff_queries.param_distributions(left, right):
        test = kolmogorov_smirnov(row.gap or 0.0, *row.counts)
        enough = min(row.counts) >= MIN_SAMPLE
        rows.append(
            ParamDifference(
                row.action, row.key, _distribution(row, 0), _distribution(row, 1), test, enough
            )
        )
    return rows


def behaviour_diff(*, agent: Agent, left: Side, right: Side) -> BehaviourDiff:
    """Compare the agent's behaviour on two sides; the caller has checked that the person
    may view the agent."""
    queries = side_decisions(agent=agent, side=left), side_decisions(agent=agent, side=right)
    mixes = [diff_queries.mix_counts(q) for q in queries]
    n = (sum(r.count for r in mixes[0]), sum(r.count for r in mixes[1]))
    families = [diff_queries.family_counts(q) for q in queries]
    raw = {
        "actions": _shares("action", _sum(mixes[0], "action"), _sum(mixes[1], "action"), n),
        "decisions": _shares("decision", _sum(mixes[0], "decision"), _sum(mixes[1], "decision"), n),
        "rates": [
            _rate("failure rate", mixes, hit=ActionStatus.FAILED, out_of=_RAN),
            _rate(
                "rejection rate",
                mixes,
                hit=ActionStatus.REJECTED,
                out_of=_ANSWERED,
                held_only=True,
            ),
        ],
        "families": _shares("resource family", families[0], families[1], n),
        "params": _params(*queries),
    }
    judged = _judge(raw)
    flagged = [row for rows in judged.values() for row in rows if row.flagged]
    flagged.sort(key=lambda row: row.p_adjusted)
    return BehaviourDiff(
        agent=agent.slug,
        left=SideSummary(left, left.label, n[0]),
        right=SideSummary(right, right.label, n[1]),
        actions=_ordered(judged["actions"]),
        decisions=judged["decisions"],
        rates=judged["rates"],
        families=_ordered(judged["families"]),
        params=judged["params"],
        comparisons=sum(1 for rows in raw.values() for row in rows if row.enough),
        flagged=flagged,
    )


def _judge(raw: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Holm over the comparisons with the sample; flag those significant after it."""
    eligible = [row for rows in raw.values() for row in rows if row.enough]
    p_values = holm_adjusted([row.significance.p_value for row in eligible])
    adjusted = {id(row): p for row, p in zip(eligible, p_values, strict=True)}
    return {
        name: [
            replace(row, p_adjusted=adjusted[id(row)], flagged=adjusted[id(row)] <= ALPHA)
            if id(row) in adjusted
            else row
            for row in rows
        ]
        for name, rows in raw.items()
    }


def _ordered(rows: list[Difference]) -> list[Difference]:
    """Flagged first, then what one side alone has, then by how much the share moved."""
    return sorted(rows, key=lambda r: (not r.flagged, not r.only, -abs(r.difference), r.name))
