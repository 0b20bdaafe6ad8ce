"""The rollout guard's statistics: the sequential test, its edge cases, and its error rates."""

from __future__ import annotations

import ast
import math
import random
import sys
from pathlib import Path
from statistics import NormalDist

import pytest

from oversight.releases import guard_stats
from oversight.releases.guard_stats import (
    Arm,
    GuardSettings,
    Pairs,
    compare,
    log_mixture_ratio,
    upper_rate_bound,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from guard import binomial

WINDOW = 20 * 30  # decisions between two looks: 20/s, a look every 30 s


def test_the_example_sentence() -> None:
    verdict = compare("deny rate", Arm(121, 1_200), Arm(182, 1_200), metrics=5)
    assert verdict.threshold == 625  # 5 metrics / (0.01 less the early test's fifth)
    assert verdict.difference == pytest.approx(61 / 1_200)
    assert verdict.explain() == (
        "deny rate 15.2% under the candidate (182 of 1,200) vs 10.1% under stable "
        f"(121 of 1,200): +5.1 points, evidence {verdict.statistic:,.0f} (threshold 625)"
    )
    assert not verdict.regressed  # 374: not yet, with independent arms of 1,200


def test_a_clear_regression_regresses_and_says_so() -> None:
    verdict = compare("deny rate", Arm(1_210, 12_000), Arm(1_820, 12_000), metrics=5)
    assert verdict.enough and verdict.regressed
    assert verdict.statistic >= verdict.threshold
    assert verdict.explain().endswith(": a regression")


def test_shadow_pairs_make_the_same_counts_conclusive() -> None:
    stable, candidate = Arm(121, 1_200), Arm(182, 1_200)
    paired = compare("deny rate", stable, candidate, metrics=5, pairs=Pairs(61, 0))
    assert paired.regressed
    assert paired.statistic > compare("deny rate", stable, candidate, metrics=5).statistic
    assert "61 only under the candidate, 0 only under stable" in paired.explain()


@pytest.mark.parametrize("n", [50, 1_000, 100_000, 10_000_000])
@pytest.mark.parametrize("rate", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_identical_rates_never_regress(n: int, rate: float) -> None:
    hits = round(n * rate)
    verdict = compare("deny rate", Arm(hits, n), Arm(hits, n), metrics=1)
    assert verdict.difference == 0.0
    assert verdict.statistic < 1.0
    assert not verdict.regressed


@pytest.mark.parametrize(
    ("stable", "candidate"),
    [
        (Arm(500, 1_000), Arm(0, 1_000)),
        (Arm(1_000, 1_000), Arm(0, 1_000)),
        (Arm(121, 1_200), Arm(100, 1_200)),
        (Arm(5_000_000, 10_000_000), Arm(4_000_000, 10_000_000)),
    ],
)
def test_a_better_candidate_never_regresses(stable: Arm, candidate: Arm) -> None:
    loose = GuardSettings(alpha=0.5, min_n=1, min_effect=0.0)
    assert not compare("deny rate", stable, candidate, metrics=1, settings=loose).regressed


def test_zero_counts() -> None:
    nothing = compare("deny rate", Arm(0, 0), Arm(0, 0), metrics=5)
    assert (nothing.statistic, nothing.enough, nothing.regressed) == (0.0, False, False)
    assert "no data under the candidate" in nothing.explain()
    one_side = compare("deny rate", Arm(0, 0), Arm(300, 300), metrics=5)
    assert not one_side.enough and not one_side.regressed
    no_hits = compare("deny rate", Arm(0, 5_000), Arm(0, 5_000), metrics=5)
    assert math.isfinite(no_hits.statistic) and not no_hits.regressed


def test_below_the_minimum_sample_the_mixtures_evidence_alone_does_not_regress() -> None:
    settings = GuardSettings()
    n = settings.min_n - 1
    verdict = compare("deny rate", Arm(5, n), Arm(30, n), metrics=5)
    assert verdict.statistic > 1_000 * verdict.threshold  # the evidence is there ...
    assert not verdict.enough and not verdict.regressed  # ... but not the sample it needs
    assert verdict.early is not None and not verdict.early.regressed  # nor beyond doubt
    assert verdict.explain().endswith(
        f"; too few decisions yet to judge (at least {settings.min_n} under each)"
    )


def test_gross_breakage_is_rolled_back_on_a_few_decisions_exactly() -> None:
    """A candidate denying all of 16 requests stable allowed (shadow): far under min_n,
    but stable's rate is at most 49.2% and the candidate's 16 of 16 are beyond doubt."""
    verdict = compare("deny rate", Arm(0, 16), Arm(16, 16), metrics=3, pairs=Pairs(16, 0))
    assert not verdict.enough and verdict.regressed
    assert verdict.early is not None and verdict.early.regressed
    assert verdict.early.threshold == 3_000  # two sides, 3 metrics, a fifth of 0.01
    assert verdict.explain() == (
        "deny rate 100.0% under the candidate (16 of 16) vs 0.0% under stable (0 of 16):"
        " +100.0 points; on so few decisions, beyond doubt: stable's rate is at most 49.2%"
        " and the candidate's evidence of a higher one 4,974 (threshold 3,000): a regression"
    )
    fewer = compare("deny rate", Arm(0, 15), Arm(15, 15), metrics=3, pairs=Pairs(15, 0))
    assert not fewer.regressed
    # A 1% canary that denies everything, against a stable denying 10% of its traffic:
    # rolled back on its 6th decision, where the mixture waited for its 50th.
    canary = [compare("deny rate", Arm(n * 10, n * 99), Arm(n, n), metrics=5) for n in (5, 6)]
    assert [v.regressed for v in canary] == [False, True]


def test_the_early_tests_error_is_bounded_at_every_look() -> None:
    # Identical releases at a 30% rate, one decision under each per look, 49 looks (all
    # under min_n): with a loose alpha (the early test's threshold 8 a side), a false
    # regression takes one of two errors of 1 in 8 each, 25% in all. Measured far below.
    settings = GuardSettings(alpha=0.5, early_share=0.5, min_effect=0.0)
    assert settings.early_threshold(1) == 8
    rng = random.Random(20261207)
    runs, alarms = 2_000, 0
    for _ in range(runs):
        s_hits = c_hits = 0
        for n in range(1, settings.min_n):
            s_hits += rng.random() < 0.3
            c_hits += rng.random() < 0.3
            if compare(
                "deny rate", Arm(s_hits, n), Arm(c_hits, n), metrics=1, settings=settings
            ).regressed:
                alarms += 1
                break
    assert alarms / runs <= 0.25  # 2 of 2,000 with this seed
    assert alarms > 0  # the test can fire: it is not vacuous


def test_stables_bound_holds_its_true_rate_at_every_look() -> None:
    # The confidence sequence at a threshold of 20: at most 1 in 20 runs ever has a bound
    # under the true rate, over 200 looks.
    rng = random.Random(7)
    runs, missed = 1_000, 0
    for _ in range(runs):
        hits = 0
        for n in range(1, 201):
            hits += rng.random() < 0.2
            if upper_rate_bound(Arm(hits, n), 20) < 0.2:
                missed += 1
                break
    assert missed / runs <= 0.05  # 6 of 1,000 with this seed


def test_a_certain_but_tiny_difference_is_not_rolled_back() -> None:
    verdict = compare(
        "deny rate", Arm(1_000_000, 10_000_000), Arm(1_050_000, 10_000_000), metrics=5
    )
    assert verdict.difference == pytest.approx(0.005)
    assert verdict.statistic > verdict.threshold
    assert not verdict.regressed  # below min_effect (one point)


def test_overwhelming_evidence_does_not_overflow() -> None:
    verdict = compare("deny rate", Arm(0, 1_000_000), Arm(1_000_000, 1_000_000), metrics=5)
    assert verdict.statistic == math.inf and verdict.regressed
    assert "evidence beyond measure" in verdict.explain()


def test_the_statistic_is_the_published_mixture_ratio_made_one_sided() -> None:
    # Two-sided mSPRT for a normal estimate (Johari et al.), times 2 Phi(...) for the
    # half-normal mixture over theta >= 0.
    for d, v, tau in [
        (0.05, 1e-4, 0.05),
        (0.01, 4e-5, 0.05),
        (-0.02, 2e-4, 0.03),
        (0.0, 1e-3, 0.1),
    ]:
        two_sided = math.sqrt(v / (v + tau**2)) * math.exp(tau**2 * d**2 / (2 * v * (v + tau**2)))
        phi = NormalDist().cdf(tau * d / math.sqrt(v * (v + tau**2)))
        assert log_mixture_ratio(d, v, tau) == pytest.approx(math.log(2 * phi * two_sided))


def test_alpha_is_split_over_the_metrics() -> None:
    one = compare("hold rate", Arm(50, 1_000), Arm(90, 1_000), metrics=1)
    five = compare("hold rate", Arm(50, 1_000), Arm(90, 1_000), metrics=5)
    assert (one.threshold, five.threshold) == (125, 625)
    assert one.statistic == five.statistic


@pytest.mark.parametrize(
    ("hits", "n"), [(5, 4), (-1, 10), (1, -1), (1.0, 10), (True, 10), (1, "10")]
)
def test_impossible_counts_are_refused(hits: object, n: object) -> None:
    with pytest.raises(ValueError):
        Arm(hits, n)  # type: ignore[arg-type]


def test_impossible_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="equal n"):
        compare("deny rate", Arm(10, 100), Arm(12, 101), metrics=5, pairs=Pairs(2, 0))
    with pytest.raises(ValueError, match="do not match"):
        compare("deny rate", Arm(10, 100), Arm(12, 100), metrics=5, pairs=Pairs(3, 0))
    with pytest.raises(ValueError, match="more hits of its own"):
        compare("deny rate", Arm(1, 100), Arm(5, 100), metrics=5, pairs=Pairs(6, 2))
    with pytest.raises(ValueError, match="negative"):
        Pairs(-1, 0)


@pytest.mark.parametrize("metrics", [0, -1, True, 2.0])
def test_the_number_of_metrics_must_be_a_positive_integer(metrics: object) -> None:
    with pytest.raises(ValueError, match="metrics"):
        compare("deny rate", Arm(1, 100), Arm(2, 100), metrics=metrics)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"alpha": 0.0},
        {"alpha": 1.0},
        {"tau": 0.0},
        {"tau": math.inf},
        {"min_n": 0},
        {"min_effect": -0.1},
        {"early_share": 0.0},
        {"early_share": 1.0},
    ],
)
def test_bad_settings_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GuardSettings(**changes)  # type: ignore[arg-type]


def test_the_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(guard_stats.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots = {(node.module or "").split(".")[0]}
        else:
            continue
        assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots


def _z_test_regressed(stable: Arm, candidate: Arm, level: float) -> bool:
    """A one-sided two-proportion z-test, the fixed-sample test a sequential one replaces."""
    pooled = (stable.hits + candidate.hits) / (stable.n + candidate.n)
    variance = pooled * (1 - pooled) * (1 / stable.n + 1 / candidate.n)
    z = (candidate.rate - stable.rate) / math.sqrt(variance) if variance else 0.0
    return z >= NormalDist().inv_cdf(1 - level)


def test_identical_releases_rarely_alarm_however_often_the_guard_looks() -> None:
    # 2,000 A/A canaries at 50% of 20 decisions/s, a 10% deny rate, 60 looks (30 minutes).
    # The harshest setting: the whole 1% on this one metric and no minimum effect. The
    # sequential test stays under 1%; a fixed-sample test at 1% made afresh at every look
    # does not.
    rng = random.Random(20261202)
    settings = GuardSettings(min_effect=0.0)
    runs, sequential, fixed = 2_000, 0, 0
    for _ in range(runs):
        s_hits = s_n = c_hits = c_n = 0
        alarm = naive = False
        for _ in range(60):
            to_candidate = binomial(rng, WINDOW, 0.5)
            c_n, s_n = c_n + to_candidate, s_n + WINDOW - to_candidate
            c_hits += binomial(rng, to_candidate, 0.10)
            s_hits += binomial(rng, WINDOW - to_candidate, 0.10)
            stable, candidate = Arm(s_hits, s_n), Arm(c_hits, c_n)
            alarm = (
                alarm
                or compare("deny rate", stable, candidate, metrics=1, settings=settings).regressed
            )
            naive = naive or _z_test_regressed(stable, candidate, 0.01)
        sequential += alarm
        fixed += naive
    assert sequential / runs <= 0.003  # 2 of 2,000 with this seed
    assert fixed / runs >= 0.05  # 174 of 2,000


def test_a_five_point_deny_regression_in_shadow_is_found_within_two_minutes() -> None:
    # Shadow at 20 decisions/s from a 10% deny rate: the candidate denies what stable
    # denies and 5 points more of what it allows. Looks every 30 s; the guard checks three
    # metrics in shadow.
    rng = random.Random(15)
    extra = 0.05 / 0.90
    runs = 1_000
    found = {"with pairs": 0, "counts only": 0}
    for _ in range(runs):
        n = stable_hits = candidate_only = 0
        first: dict[str, int] = {}
        for look in range(1, 5):  # 30, 60, 90, 120 s
            hits = binomial(rng, WINDOW, 0.10)
            n, stable_hits = n + WINDOW, stable_hits + hits
            candidate_only += binomial(rng, WINDOW - hits, extra)
            stable, candidate = Arm(stable_hits, n), Arm(stable_hits + candidate_only, n)
            for way, pairs in (("with pairs", Pairs(candidate_only, 0)), ("counts only", None)):
                if (
                    way not in first
                    and compare("deny rate", stable, candidate, metrics=3, pairs=pairs).regressed
                ):
                    first[way] = look
        for way in first:
            found[way] += 1
    assert found["with pairs"] == runs
    assert found["counts only"] >= 0.99 * runs


def test_gross_breakage_is_found_in_a_few_dozen_paired_decisions() -> None:
    # A candidate that denies all 60 requests stable allowed (shadow, the same requests).
    verdict = compare(
        "deny rate",
        Arm(0, 60),
        Arm(60, 60),
        metrics=2,
        pairs=Pairs(candidate_only=60, stable_only=0),
    )
    assert verdict.regressed and verdict.statistic > 1e6
    narrow = compare(
        "deny rate",
        Arm(0, 60),
        Arm(60, 60),
        metrics=2,
        pairs=Pairs(candidate_only=60, stable_only=0),
        settings=GuardSettings(wide_weight=0.0),
    )
    assert not narrow.regressed  # the narrow mixture alone doubts a 100-point jump
