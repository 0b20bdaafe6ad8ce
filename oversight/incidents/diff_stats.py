"""The statistics of the behaviour diff: two-sided tests of one look at two fixed samples,
with p-values, and the Holm correction over all of a diff's comparisons.

The rollout guard (oversight/releases/guard_stats.py) asks another question: is the
candidate worse, looked at again every 30 seconds while data arrives. Its sequential,
one-sided test answers that without p-values. A behaviour diff is one look at data
already recorded, in both directions (a rate that fell matters as much as one that
rose), and it compares dozens of things at once, so it needs p-values to correct for
their number. What it shares with the guard is the count of one side, ``Arm``.

- **A proportion** (an action's share of decisions, a failure rate): the two-proportion
  z-test (pooled; the same as the chi-square test of the 2x2 table without continuity
  correction) when every expected cell of the table is at least 5, the usual condition
  for its normal approximation; otherwise Fisher's exact test (two-sided: the tables at
  most as likely as the one observed). So an action seen 5 times on one side and never
  on the other is judged exactly, not by an approximation that would overstate it.
- **A numeric distribution** (``params.amount`` of an action): the two-sample
  Kolmogorov-Smirnov test, its statistic the largest gap between the two empirical
  distribution functions, its p-value the asymptotic Kolmogorov distribution with
  Stephens' small-sample correction (Numerical Recipes, ``probks``). It sees a shift, a
  wider spread or a new mode alike. With ties (whole amounts) it is conservative: it
  flags less, never more.
- **Many at once:** Holm's step-down correction keeps the chance of flagging anything at
  all, when nothing changed, at most ``alpha``, whatever the dependence between the
  comparisons (an action's share rising makes others fall).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from oversight.releases.guard_stats import Arm

# A cell of the 2x2 table expected below this: Fisher's exact test, not the z-test.
MIN_EXPECTED = 5.0
Z_TEST = "two-proportion z"
FISHER = "fisher exact"
KS = "kolmogorov-smirnov"


@dataclass(frozen=True)
class Significance:
    """One test's result. ``statistic`` is z for the z-test, the left side's hits (the
    table's first cell) for Fisher's test, and the largest gap D for Kolmogorov-Smirnov."""

    test: str
    statistic: float
    p_value: float


def normal_two_sided(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(left: Arm, right: Arm) -> float:
    """Two-sided p-value of Fisher's exact test of ``left.hits`` of ``left.n`` against
    ``right.hits`` of ``right.n``: the probability, with the margins fixed, of every table
    at most as likely as the one observed."""
    hits = left.hits + right.hits
    total = left.n + right.n
    low, high = max(0, hits - right.n), min(left.n, hits)

    def log_p(x: int) -> float:
        return _log_choose(left.n, x) + _log_choose(right.n, hits - x) - _log_choose(total, hits)

    observed = log_p(left.hits) + 1e-7  # a relative tolerance, as scipy's, for rounding
    p_value = sum(math.exp(lp) for lp in map(log_p, range(low, high + 1)) if lp <= observed)
    return min(1.0, p_value)


def two_proportions(left: Arm, right: Arm) -> Significance:
    """Do the two rates differ? The z-test when the table is large enough, else Fisher's."""
    if not left.n or not right.n:
        return Significance(Z_TEST, 0.0, 1.0)
    hits = left.hits + right.hits
    total = left.n + right.n
    expected = min(left.n, right.n) * min(hits, total - hits) / total
    if expected < MIN_EXPECTED:
        return Significance(FISHER, float(left.hits), fisher_exact(left, right))
    pooled = hits / total
    error = math.sqrt(pooled * (1.0 - pooled) * (1.0 / left.n + 1.0 / right.n))
    z = (right.rate - left.rate) / error
    return Significance(Z_TEST, z, normal_two_sided(z))


def kolmogorov_p_value(d: float, n: int, m: int) -> float:
    """P(D >= d) for two samples of n and m drawn from one distribution (asymptotic, with
    Stephens' correction; 1.0 where the series does not converge, i.e. d near 0)."""
    if n < 1 or m < 1 or d <= 0.0:
        return 1.0
    effective = math.sqrt(n * m / (n + m))
    lam = (effective + 0.12 + 0.11 / effective) * d
    total, sign, previous = 0.0, 1.0, 0.0
    for k in range(1, 101):
        term = sign * 2.0 * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) <= 1e-3 * previous or abs(term) <= 1e-8 * total:
            return min(1.0, max(0.0, total))
        sign, previous = -sign, abs(term)
    return 1.0


def kolmogorov_smirnov(d: float, n: int, m: int) -> Significance:
    return Significance(KS, d, kolmogorov_p_value(d, n, m))


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: a comparison is significant
    at family-wise level alpha when its adjusted p-value is at most alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
