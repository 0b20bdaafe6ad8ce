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

**The whole guard.** ``compare`` rejects at ``Lambda >= metrics / (0.8 alpha)``: alpha
is split evenly over the metrics the guard checks (a union bound), and a fifth of it goes
to the exact test below (``early_share``), so the probability that an A/A rollout
(identical releases) is ever rolled back, over ANY number of looks and all metrics
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

**Gross breakage on few decisions.** While an arm is under ``min_n`` the mixture is not
weighed, and a candidate that denies everything would run until both arms have 50: four
minutes of a 1% canary at 20 decisions/s, far longer for a quiet agent. So before then
``early_evidence`` makes an exact test, with no normal approximation and no minimum
sample. Stable's rate is bounded above by a confidence sequence (its likelihood mixed over
a uniform rate, against each rate: a martingale under the true one), and the candidate's
counts are tested against that bound the same way. Each side may err with probability
``alpha * early_share / (2 * metrics)`` at any look (a threshold of 5,000 for five
metrics), so only gross breakage passes: a 1% canary that denies everything against a
stable denying 10% is rolled back on its 6th decision; in shadow, a candidate denying all
of 15 requests stable allowed (two metrics). It costs small effects a threshold 1.25 times
higher (625 where it was 500), which ``bench/guard.py`` shows within the spread of the
detection figures below.

**Defaults and what they detect** (``bench/guard.py``, 2,000 simulated runs each, 20
decisions/s, a look every 30 s, five metrics so a threshold of 625; figures in
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
- ``early_share = 0.2``: the part of alpha the exact test for gross breakage spends.
- ``metrics``: how many the guard checks at each look of the stage. In shadow the candidate
  decides nothing, so it has no reviewer rejections or reported outcomes: three metrics.

A +5-point deny-rate regression is found within 2 minutes in shadow with pairs from any
baseline (2%, 10%, 30%: at the first or second look), and without pairs from 2% and 10%
(from 30%, in 2.5 minutes at the median). A 50% canary (10 decisions/s to the candidate)
finds it within 2 minutes from 2% (98% of runs), but from 10% only in about two runs in
five (median 2.5 minutes, 90% within 4) and from 30% in about 4.5 minutes at the median. That
is close to what any test at this alpha can do: after 2 minutes at 10 decisions/s per arm,
+5 points from 10% is 3.7 standard errors and from 30% 2.6, while even a test made once at
that moment needs 2.9 (one-sided, 0.01 split over five metrics). A 10% canary (2
decisions/s to the candidate) takes about 7 minutes for +5 points from 10%; within 2
minutes it finds +20 points. A 1% canary (0.2 decisions/s, 24 in 2 minutes) finds a
candidate that denies everything within 1 to 1.5 minutes (the exact test), +40 points in
about 2.5 minutes, +20 points in about 8.5 and +5 points in about an hour. Its role is to
catch a broken candidate before a wider stage, not a subtle one. For a quiet agent (one
decision a second), a candidate that denies everything is rolled back in 1 minute at a 50%
canary, 2 at 10% and about 10 at 1% (2, 5.5 and 35 minutes by the mixture alone).
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
    min_n: int = JUDGED_FROM  # per arm, before the mixture can declare a regression
    min_effect: float = 0.01  # smallest difference rolled back (one point)
    # The share of alpha spent on the exact test for gross breakage (``early_evidence``),
    # which needs no minimum sample; the mixture has the rest.
    early_share: float = 0.2

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
        if not 0.0 < self.early_share < 1.0:
            raise ValueError(f"early_share must be between 0 and 1, got {self.early_share}")

    def threshold(self, metrics: int) -> float:
        """The mixture's evidence needed for a regression: its share of alpha, per metric."""
        return metrics / (self.alpha * (1.0 - self.early_share))

    def early_threshold(self, metrics: int) -> float:
        """The exact test's, for each of its two sides (stable's bound, the candidate)."""
        return 2 * metrics / (self.alpha * self.early_share)


@dataclass(frozen=True)
class Early:
    """The exact test for gross breakage (``early_evidence``): stable's rate is at most
    ``stable_bound``, and the candidate's evidence that its own rate is above that."""

    stable_bound: float
    statistic: float
    threshold: float  # for each side: stable's bound and the candidate's evidence
    regressed: bool

    def explain(self) -> str:
        return (
            f"stable's rate is at most {self.stable_bound * 100:.1f}% and the candidate's "
            f"evidence of a higher one {_number(self.statistic)} "
            f"(threshold {_number(self.threshold)})"
        )


@dataclass(frozen=True)
class Verdict:
    """The comparison of one metric at one look, with what a person needs to check it."""

    metric: str
    stable: Arm
    candidate: Arm
    difference: float  # candidate.rate - stable.rate
    statistic: float  # the one-sided mixture likelihood ratio Lambda (the evidence)
    threshold: float  # Lambda at or above it is a regression (GuardSettings.threshold)
    enough: bool  # both arms reached min_n
    regressed: bool
    pairs: Pairs | None = None
    min_n: int = 0  # the decisions each side needs before it is judged
    early: Early | None = None  # the exact test, made while an arm is under min_n

    def explain(self) -> str:
        """One plain sentence, e.g. for the rollback's record and the owner's notice."""
        c, s = self.candidate, self.stable
        text = (
            f"{self.metric} {_percent(c)} under the candidate ({c.hits:,} of {c.n:,}) vs "
            f"{_percent(s)} under stable ({s.hits:,} of {s.n:,}): "
            f"{self.difference * 100:+.1f} points"
        )
        if self.regressed and not self.enough and self.early is not None:
            # The mixture's evidence is not weighed on so few: only the exact test's counts.
            return (
                f"{text}; on so few decisions, beyond doubt: {self.early.explain()}: a regression"
            )
        text += f", evidence {_number(self.statistic)} (threshold {_number(self.threshold)})"
        if self.pairs is not None:
            text += (
                f", same requests: {self.pairs.candidate_only:,} only under the candidate, "
                f"{self.pairs.stable_only:,} only under stable"
            )
        if self.enough:
            return text + (": a regression" if self.regressed else "")
        at_least = f" (at least {self.min_n:,} under each)" if self.min_n else ""
        return f"{text}; too few decisions yet to judge{at_least}"


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


def _log_likelihood(hits: int, n: int, rate: float) -> float:
    """log of ``rate ** hits * (1 - rate) ** (n - hits)`` (-inf where it is 0)."""
    misses = n - hits
    if (hits and rate <= 0.0) or (misses and rate >= 1.0):
        return -math.inf
    return (hits * math.log(rate) if hits else 0.0) + (
        misses * math.log1p(-rate) if misses else 0.0
    )


def log_uniform_mixture_ratio(arm: Arm, rate: float) -> float:
    """log of the arm's likelihood mixed over a uniform rate, against its likelihood at
    ``rate``: ``B(hits + 1, n - hits + 1) / (rate ** hits * (1 - rate) ** (n - hits))``.

    Under ``rate`` this is a martingale in n with mean 1, so it ever reaches ``t`` with
    probability at most ``1 / t`` (Ville's inequality): no normal approximation, no
    minimum sample."""
    h, n = arm.hits, arm.n
    log_beta = math.lgamma(h + 1) + math.lgamma(n - h + 1) - math.lgamma(n + 2)
    return log_beta - _log_likelihood(h, n, rate)


def upper_rate_bound(arm: Arm, threshold: float) -> float:
    """The highest rate the arm's counts leave possible: the top of the confidence sequence
    ``{rate: log_uniform_mixture_ratio(arm, rate) < log(threshold)}``, which holds the true
    rate at every look with probability at least ``1 - 1 / threshold``."""
    if arm.hits == arm.n:
        return 1.0
    limit = math.log(threshold)
    low, high = arm.rate, 1.0  # the ratio is at most 1 at the arm's rate, and grows above it
    for _ in range(40):
        middle = (low + high) / 2
        if log_uniform_mixture_ratio(arm, middle) < limit:
            low = middle
        else:
            high = middle
    return high


def early_evidence(
    stable: Arm, candidate: Arm, *, metrics: int, settings: GuardSettings = GuardSettings()
) -> Early:
    """Gross breakage on a few decisions, before the mixture may judge (``min_n``).

    Two statements, each made at any look and wrong with probability at most
    ``1 / threshold``: stable's rate is at most ``upper_rate_bound(stable)``, and the
    candidate's is above that bound (its uniform mixture ratio against the bound reaches the
    threshold, with its rate above the bound). If the candidate is no worse than stable
    and stable's bound holds, the second is wrong: the ratio against a rate between stable's
    and the bound is at least the ratio against the bound, and against a candidate rate
    below stable's the chance of reaching the threshold only falls. So a false regression
    takes one of two errors, ``2 / threshold`` in all, which is the alpha this test is given
    per metric (``GuardSettings.early_share``)."""
    threshold = settings.early_threshold(metrics)
    bound = upper_rate_bound(stable, threshold)
    log_ratio = log_uniform_mixture_ratio(candidate, bound)
    statistic = math.exp(log_ratio) if log_ratio < _LOG_MAX else math.inf
    return Early(
        stable_bound=bound,
        statistic=statistic,
        threshold=threshold,
        regressed=candidate.rate > bound and statistic >= threshold,
    )


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
    threshold = settings.threshold(metrics)
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
    worse = difference > 0.0 and difference >= settings.min_effect
    early = (
        early_evidence(stable, candidate, metrics=metrics, settings=settings)
        if worse and not enough
        else None
    )
    regressed = worse and (
        statistic >= threshold if enough else early is not None and early.regressed
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
        early=early,
    )
