"""Is the candidate release worse than stable? The statistics the rollout guard calls.

The guard looks every 30 seconds at counts gathered since the current stage began (shadow
or canary) and asks, per metric, whether a proportion is higher under the candidate than
under stable: deny rate (denied / decided), hold rate (held / decided), reviewer rejection
rate (rejected / held and resolved), failure rate (failed / outcomes reported), limit-hit
rate (stopped by a limit / decided). Higher is worse for every one of them, so the test is
one-sided. This module is pure Python (standard library only) and knows nothing of models.

**The test.** A fixed-sample test re-run at every look raises false alarms with every look
(at 60 looks, a 1% test fires in far more than 1% of identical rollouts). So each metric is
tested with a mixture sequential probability ratio test (mSPRT; Johari, Pekelis, Walsh,
"Always valid inference", and Johari, Koomen, Pekelis, Walsh, "Peeking at A/B tests",
KDD 2017), in its normal-approximation form for a difference of two proportions. With
``d = p_c - p_s`` and ``V`` the variance of ``d``, the likelihood ratio of "the difference
is theta" against "it is 0", mixed over theta, is:

- two-sided, theta ~ N(0, tau^2): ``sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))``
  (the published form; with ``V = V_n / n`` it is the mixtureSPRT package's Bernoulli one);
- one-sided, theta ~ half-normal on theta >= 0 (used here): the same times
  ``2 * Phi(tau d / sqrt(V (V + tau^2)))``.

The one-sided mixture is the better-founded choice for "is the candidate worse": each
likelihood ratio it mixes (theta > 0 against 0) is a martingale when the rates are equal
and a supermartingale when the candidate is better, so (in the normal model of ``d``) the
mixture is a test supermartingale for the whole null "candidate no worse", and Ville's
inequality gives P(Lambda ever reaches 1/alpha) <= alpha, at any number of looks, taken at
any times. It
spends all of alpha on regressions, where rejecting the two-sided test only when ``d > 0``
wastes half of it on improvements: for a clear regression Lambda is twice the two-sided
one, so it crosses the same threshold sooner.

**The whole guard.** ``compare`` rejects at ``Lambda >= metrics / alpha``: alpha is split
evenly over the metrics the guard checks (a union bound), so the probability that an A/A
rollout (identical releases) is ever rolled back, over ANY number of looks and all metrics
together, is at most ``alpha`` (0.01 by default). Besides the evidence, a regression needs
both arms at ``min_n`` (the normal approximation needs a sample) and ``d >= min_effect``
(a difference too small to matter is not rolled back however certain); both only make
rollbacks rarer, so the bound holds. It holds approximately: V is estimated (each rate
taken as ``(hits + 0.5) / (n + 1)`` in V only, so that V is never zero); ``bench/guard.py``
measures the real rate, far below the bound because the guard's looks are discrete and a
stage ends. Counts must be cumulative since the stage began and the canary share fixed
within it: a new stage (a new share) starts a new comparison.

**Shadow pairs.** In shadow, every request is decided under stable and also evaluated
under the candidate: the arms are the same requests, and they differ only where the two
releases disagree. Given those counts (``Pairs``), V is the variance of a paired
difference, as in McNemar's test: ``(candidate_only + stable_only) / n^2`` (at least
``1 / n^2``). It is far smaller than the two-sample V (at a 10% deny rate and a 5-point
regression, about a quarter), so a regression is found sooner; without pairs the
two-sample V overstates the variance of paired arms, which is valid but slower.

**Defaults and what they detect** (``bench/guard.py``, 2,000 simulated runs each, 20
decisions/s, a look every 30 s, five metrics so a threshold of 500; figures in
docs/performance.md):

- ``tau = 0.05``: the mixture is spread over regressions of a few points, where the guard
  must be quick (0.04 to 0.08 did as well in the simulation; 0.02 and 0.03 worse).
- ``wide_tau = 0.5`` with weight 0.2: a second component for gross breakage. With
  ``tau = 0.05`` alone, a candidate denying all of 60 requests that stable allowed gives
  evidence of about 90 (the narrow prior doubts a 100-point jump); with the wide component
  it is beyond measure. Small effects pay for it with a threshold 1.25 times higher.
- ``min_n = 50`` per arm: 2.5 s of shadow, 5 s of a 50% canary, 25 s of a 10% canary,
  about 4 minutes of a 1% canary. Lowering it to 10 added no false alarm in the
  simulation; 50 keeps the normal approximation on safe ground.
- ``min_effect = 0.01``: one point.
- ``metrics``: how many the guard checks at each look of the stage. In shadow the candidate
  decides nothing, so it has no reviewer rejections or reported outcomes: three metrics.

A +5-point deny-rate regression is found within 2 minutes in shadow with pairs from any
baseline (2%, 10%, 30%: at the first or second look), and without pairs from 2% and 10%
(from 30%, in 2.5 minutes at the median). A 50% canary (10 decisions/s to the candidate)
finds it within 2 minutes from 2% (99% of runs), but from 10% only in about half the runs
(median 2.5 minutes, 90% within 4) and from 30% in about 4.5 minutes at the median. That
is close to what any test at this alpha can do: after 2 minutes at 10 decisions/s per arm,
+5 points from 10% is 3.7 standard errors and from 30% 2.6, while even a test made once at
that moment needs 2.9 (one-sided, 0.01 split over five metrics). A 10% canary (2
decisions/s to the candidate) takes about 6.5 minutes for +5 points from 10%; within 2
minutes it finds +20 points. A 1% canary (0.2 decisions/s, 24 in 2 minutes) finds nothing
within 2 minutes: it waits about 4 minutes for ``min_n``, then finds gross breakage (+40
points as soon as it has them, +20 points in about 10 minutes); +5 points takes it about
an hour. Its role is to catch a broken candidate before a wider stage, not a subtle one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

JUDGED_FROM = 50  # decisions under each of stable and the candidate before a verdict

_LOG_MAX = 709.0  # math.exp overflows above about 709.78


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


@dataclass(frozen=True)
class Arm:
    """One release's count for one metric: ``hits`` of ``n`` (e.g. 121 denied of 1,200)."""

    hits: int
    n: int

    def __post_init__(self) -> None:
        _count(self.hits, "hits")
        _count(self.n, "n")
        if self.hits > self.n:
            raise ValueError(f"hits ({self.hits}) cannot exceed n ({self.n})")

    @property
    def rate(self) -> float:
        """The proportion, 0.0 when nothing was counted."""
        return self.hits / self.n if self.n else 0.0


@dataclass(frozen=True)
class Pairs:
    """Shadow only: of the same requests, how many were hits under one release alone."""

    candidate_only: int
    stable_only: int

    def __post_init__(self) -> None:
        _count(self.candidate_only, "candidate_only")
        _count(self.stable_only, "stable_only")


@dataclass(frozen=True)
class GuardSettings:
    """The test's parameters; the module docstring says why these defaults."""

    alpha: float = 0.01  # for the whole guard, split evenly over the metrics
    tau: float = 0.05  # spread of the mixture over the difference (in proportion units)
    # A second, wide component of the mixture, for gross breakage: a candidate that
    # denies everything is found in a few dozen decisions, not minutes. A weighted sum of
    # mixtures is a mixture, so the bound holds; small effects pay 1 / (1 - weight).
    wide_tau: float = 0.5
    wide_weight: float = 0.2
    min_n: int = JUDGED_FROM  # per arm, before a regression can be declared
    min_effect: float = 0.01  # smallest difference rolled back (one point)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        if not self.tau > 0.0 or math.isinf(self.tau):
            raise ValueError(f"tau must be positive and finite, got {self.tau}")
        if not self.wide_tau > 0.0 or math.isinf(self.wide_tau):
            raise ValueError(f"wide_tau must be positive and finite, got {self.wide_tau}")
        if not 0.0 <= self.wide_weight < 1.0:
            raise ValueError(f"wide_weight must be in [0, 1), got {self.wide_weight}")
        if _count(self.min_n, "min_n") < 1:
            raise ValueError("min_n must be at least 1")
        if not 0.0 <= self.min_effect < 1.0:
            raise ValueError(f"min_effect must be in [0, 1), got {self.min_effect}")


@dataclass(frozen=True)
class Verdict:
    """The comparison of one metric at one look, with what a person needs to check it."""

    metric: str
    stable: Arm
    candidate: Arm
    difference: float  # candidate.rate - stable.rate
    statistic: float  # the one-sided mixture likelihood ratio Lambda (the evidence)
    threshold: float  # metrics / alpha: Lambda at or above it is a regression
    enough: bool  # both arms reached min_n
    regressed: bool
    pairs: Pairs | None = None
    min_n: int = 0  # the decisions each side needs before it is judged

    def explain(self) -> str:
        """One plain sentence, e.g. for the rollback's record and the owner's notice."""
        c, s = self.candidate, self.stable
        text = (
            f"{self.metric} {_percent(c)} under the candidate ({c.hits:,} of {c.n:,}) vs "
            f"{_percent(s)} under stable ({s.hits:,} of {s.n:,}): "
            f"{self.difference * 100:+.1f} points, evidence {_number(self.statistic)} "
            f"(threshold {_number(self.threshold)})"
        )
        if self.pairs is not None:
            text += (
                f", same requests: {self.pairs.candidate_only:,} only under the candidate, "
                f"{self.pairs.stable_only:,} only under stable"
            )
        if not self.enough:
            text += "; too few decisions yet to judge"
            if self.min_n:
                text += f" (at least {self.min_n:,} under each)"
        elif self.regressed:
            text += ": a regression"
        return text


def _percent(arm: Arm) -> str:
    return f"{arm.rate * 100:.1f}%" if arm.n else "no data"


def _number(value: float) -> str:
    if math.isinf(value):
        return "beyond measure"
    if value >= 1e6:
        return "over a million"  # (beyond any threshold; "1.1e+06" read as a typo)
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def log_mixture_ratio(difference: float, variance: float, tau: float) -> float:
    """log Lambda of the one-sided (half-normal) mixture for a difference with this variance."""
    if variance <= 0.0:
        raise ValueError("variance must be positive")
    total = variance + tau * tau
    exponent = tau * tau * difference * difference / (2.0 * variance * total)
    z = tau * difference / math.sqrt(variance * total)
    # 2 * Phi(z) = erfc(-z / sqrt(2)); its log, kept finite far in the left tail.
    log_two_phi = math.log(max(math.erfc(-z / math.sqrt(2.0)), 1e-300))
    return log_two_phi + 0.5 * math.log(variance / total) + exponent


def _log_sum(*terms: tuple[float, float]) -> float:
    """log(sum(weight * exp(log_value))), without overflow."""
    kept = [(w, v) for w, v in terms if w > 0.0]
    top = max(v for _, v in kept)
    return top + math.log(sum(w * math.exp(v - top) for w, v in kept))


def _variance(stable: Arm, candidate: Arm, pairs: Pairs | None) -> float:
    if pairs is not None:
        discordant = pairs.candidate_only + pairs.stable_only
        return max(discordant, 1) / (candidate.n * candidate.n)
    ps = (stable.hits + 0.5) / (stable.n + 1)
    pc = (candidate.hits + 0.5) / (candidate.n + 1)
    return ps * (1.0 - ps) / stable.n + pc * (1.0 - pc) / candidate.n


def _check_pairs(stable: Arm, candidate: Arm, pairs: Pairs) -> None:
    if stable.n != candidate.n:
        raise ValueError("paired arms must count the same requests (equal n)")
    if pairs.stable_only > stable.hits or pairs.candidate_only > candidate.hits:
        raise ValueError("a release cannot have more hits of its own than hits")
    if candidate.hits - stable.hits != pairs.candidate_only - pairs.stable_only:
        raise ValueError("pairs do not match the arms: hits must differ by the discordant ones")


def compare(
    metric: str,
    stable: Arm,
    candidate: Arm,
    *,
    metrics: int,
    settings: GuardSettings = GuardSettings(),
    pairs: Pairs | None = None,
) -> Verdict:
    """Is ``metric`` higher under the candidate than under stable, beyond noise?

    ``metrics`` is how many metrics the guard checks at each look (the alpha is split over
    them). ``pairs``, in shadow only, says where the releases disagreed on the same
    requests. Raises ValueError on impossible counts.
    """
    if isinstance(metrics, bool) or not isinstance(metrics, int) or metrics < 1:
        raise ValueError(f"metrics must be a positive integer, got {metrics!r}")
    if pairs is not None:
        _check_pairs(stable, candidate, pairs)
    difference = candidate.rate - stable.rate
    threshold = metrics / settings.alpha
    if stable.n and candidate.n:
        variance = _variance(stable, candidate, pairs)
        log_lambda = _log_sum(
            (1.0 - settings.wide_weight, log_mixture_ratio(difference, variance, settings.tau)),
            (settings.wide_weight, log_mixture_ratio(difference, variance, settings.wide_tau)),
        )
        statistic = math.exp(log_lambda) if log_lambda < _LOG_MAX else math.inf
    else:
        statistic = 0.0  # nothing to compare yet
    enough = min(stable.n, candidate.n) >= settings.min_n
    regressed = (
        enough and difference > 0.0 and difference >= settings.min_effect and statistic >= threshold
    )
    return Verdict(
        metric=metric,
        stable=stable,
        candidate=candidate,
        difference=difference,
        statistic=statistic,
        threshold=threshold,
        enough=enough,
        regressed=regressed,
        pairs=pairs,
        min_n=settings.min_n,
    )
