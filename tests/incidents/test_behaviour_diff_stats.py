"""The behaviour diff's statistics: the tests' p-values against known values, Holm's
correction, and when a difference is flagged (a real shift) and when not (too few
decisions; the same behaviour on both sides)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.incidents.behaviour_diff import MIN_SAMPLE, Side, behaviour_diff
from oversight.incidents.diff_stats import (
    FISHER,
    Z_TEST,
    fisher_exact,
    holm_adjusted,
    kolmogorov_p_value,
    two_proportions,
)
from oversight.releases.guard_stats import Arm
from tests.incidents.behaviour_data import record, refund_row, two_releases

# --- the tests themselves (no database) ---------------------------------------------


def test_fisher_matches_the_textbook_tables() -> None:
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: two-sided p = 34/70.
    assert fisher_exact(Arm(3, 4), Arm(1, 4)) == pytest.approx(34 / 70, rel=1e-9)
    # [[8, 2], [1, 5]]: two-sided p = 0.034965 (R's fisher.test gives 0.03497).
    assert fisher_exact(Arm(8, 10), Arm(1, 6)) == pytest.approx(0.0349650, rel=1e-5)
    assert fisher_exact(Arm(0, 40), Arm(0, 40)) == 1.0


def test_the_z_test_is_used_when_the_table_is_large_enough() -> None:
    # 50 of 100 against 70 of 100: pooled 0.6, z = 0.2 / sqrt(0.24 * 0.02) = 2.8868.
    found = two_proportions(Arm(50, 100), Arm(70, 100))
    assert found.test == Z_TEST
    assert found.statistic == pytest.approx(2.886751, rel=1e-6)
    assert found.p_value == pytest.approx(0.0038924, rel=1e-4)


def test_rare_events_are_judged_exactly_not_by_the_normal_approximation() -> None:
    # 5 of 1,000 against none of 1,000: the z-test would say p = 0.025. Exactly, all five
    # fall on one side with probability 1000/2000 * 999/1999 * ... * 996/1996, and on
    # either side with twice that: 0.0621876.
    found = two_proportions(Arm(0, 1000), Arm(5, 1000))
    assert found.test == FISHER
    assert found.p_value == pytest.approx(0.0621876, rel=1e-6)


def test_kolmogorov_p_value_at_the_textbook_critical_values() -> None:
    # The large-sample critical value of D at 5 % is 1.358 * sqrt((n + m) / (n m)).
    # (Large samples: Stephens' correction, for small ones, then changes nothing.)
    n = m = 100_000
    scale = ((n + m) / (n * m)) ** 0.5
    assert kolmogorov_p_value(1.358 * scale, n, m) == pytest.approx(0.05, abs=0.0005)
    assert kolmogorov_p_value(1.628 * scale, n, m) == pytest.approx(0.01, abs=0.0002)
    assert kolmogorov_p_value(0.0, n, m) == 1.0
    assert kolmogorov_p_value(0.001, n, m) > 0.9999999
    assert kolmogorov_p_value(0.001, 1000, 1000) == 1.0  # the series does not converge
    assert kolmogorov_p_value(1.0, n, m) < 1e-100


def test_holm_adjusts_step_down_and_keeps_the_order() -> None:
    assert holm_adjusted([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjusted([]) == []
    assert holm_adjusted([0.3, 0.4]) == pytest.approx([0.6, 0.6])
    assert holm_adjusted([0.9, 0.8]) == [1.0, 1.0]


# --- when a difference is flagged (decisions in the database) --------------------------


def _flagged(found: object) -> set[tuple[str, str]]:
    return {(row.kind, row.name) for row in found.flagged}  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_real_shift_is_flagged(agent: Agent) -> None:
    old, new = two_releases(agent)
    record(agent, 600, lambda rng: refund_row(rng, deny=0.05), version=old, seed=1)
    # The new release denies four times as often and refunds larger amounts.
    record(agent, 600, lambda rng: refund_row(rng, deny=0.2, amount_mean=300), version=new, seed=2)

    found = behaviour_diff(agent=agent, left=Side.release(old), right=Side.release(new))

    assert found.left.decisions == found.right.decisions == 600
    flagged = _flagged(found)
    assert ("decision", "denied") in flagged and ("decision", "allowed") in flagged
    assert ("param", "payments.refund params.amount") in flagged
    amount = next(p for p in found.params if p.key == "amount")
    assert amount.left.count == amount.right.count == 600  # every refund names its amount
    assert amount.significance.p_value < 1e-10 and amount.p_adjusted <= found.alpha
    denied = next(d for d in found.decisions if d.name == "denied")
    assert denied.left.rate < 0.1 < 0.15 < denied.right.rate
    assert denied.p_adjusted >= denied.significance.p_value  # corrected, never less


@pytest.mark.django_db
def test_nothing_is_flagged_for_the_same_behaviour(agent: Agent) -> None:
    old, new = two_releases(agent)
    make = lambda rng: refund_row(rng, deny=0.1)  # noqa: E731
    record(agent, 800, make, version=old, seed=3)
    record(agent, 800, make, version=new, seed=4)

    found = behaviour_diff(agent=agent, left=Side.release(old), right=Side.release(new))

    assert found.comparisons >= 5  # the mixes, the failure rate and the amounts were tested
    assert found.flagged == []
    amount = next(p for p in found.params if p.key == "amount")
    assert amount.enough and amount.significance.p_value > 0.01


@pytest.mark.django_db
def test_nothing_is_flagged_under_the_minimum_sample(agent: Agent) -> None:
    old, new = two_releases(agent)
    few = MIN_SAMPLE - 1
    record(agent, few, lambda rng: refund_row(rng, deny=0.0), version=old, seed=5)
    # Everything denied, amounts a hundred times larger, a new action: all obvious, but
    # the left side has one decision fewer than the minimum.
    record(
        agent,
        400,
        lambda rng: {**refund_row(rng, deny=1.0, amount_mean=10_000), "action": "payments.wire"},
        version=new,
        seed=6,
    )

    found = behaviour_diff(agent=agent, left=Side.release(old), right=Side.release(new))

    assert found.flagged == [] and found.comparisons == 0
    assert found.only("action", "right") == ["payments.wire"]
    assert found.only("action", "left") == ["payments.refund"]
    wire = next(a for a in found.actions if a.name == "payments.wire")
    assert not wire.enough and wire.significance.p_value < 1e-20  # significant, not flagged


@pytest.mark.django_db
def test_two_windows_before_and_after_a_moment(agent: Agent) -> None:
    moment = timezone.now() - dt.timedelta(hours=2)
    hour = dt.timedelta(hours=1)
    rng_ok = lambda rng: refund_row(rng, deny=0.02)  # noqa: E731
    record(agent, 300, rng_ok, at=moment - hour, spread=hour, seed=7)
    record(
        agent,
        300,
        lambda rng: {**refund_row(rng, deny=0.02), "resource": f"s3://exports/{rng.random()}"},
        at=moment,
        spread=hour,
        seed=8,
    )
    record(agent, 300, rng_ok, at=moment, spread=hour, environment="staging", seed=9)

    from oversight.incidents.behaviour_diff import sides_around

    before, after = sides_around(moment, before=hour)
    found = behaviour_diff(agent=agent, left=before, right=after)

    assert (found.left.decisions, found.right.decisions) == (300, 300)  # staging left out
    assert found.only("family", "right") == ["s3://exports"]
    assert found.only("family", "left") == ["stripe:charge"]
    assert ("resource family", "s3://exports") in _flagged(found)


def test_sides_are_a_release_or_a_window() -> None:
    now = timezone.now()
    with pytest.raises(ValueError, match="not both or neither"):
        Side()
    with pytest.raises(ValueError, match="start before its end"):
        Side.window(now, now)
    side = Side.window(
        dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, 11, tzinfo=dt.UTC)
    )
    assert side.label == "2026-12-01 10:00 → 11:00 UTC"
    assert side.query == "2026-12-01T10:00:00Z/2026-12-01T11:00:00Z"
    assert Side.release(3).label == "v3"


def test_random_equal_samples_rarely_differ() -> None:
    """At 5 %, identical proportions are called different about 5 % of the time."""
    rng = random.Random(11)
    rejected = 0
    for _ in range(400):
        a = sum(rng.random() < 0.2 for _ in range(200))
        b = sum(rng.random() < 0.2 for _ in range(200))
        rejected += two_proportions(Arm(a, 200), Arm(b, 200)).p_value <= 0.05
    assert 5 <= rejected <= 40
