#!/usr/bin/env python
"""The rollout guard's statistics on simulated traffic: how fast, and how rarely wrong.

Usage:

    .venv/bin/python bench/guard.py [--runs 1000] [--seed 7] [--json PATH]

Simulates the guard (`oversight.releases.guard_stats.compare`) looking every 30 s at
decisions arriving at 20/s. Counts per 30-s window are drawn exactly from binomial
distributions (the same as 600 Bernoulli draws, far cheaper).

(a) **Detection delay** of a +5-point deny-rate regression from baselines of 2%, 10% and
30%, until detected or 60 minutes:
- *shadow*: every request decided under stable and evaluated under the candidate, so the
  arms are paired: the candidate denies what stable denies, and also a share of what stable
  allows (how a stricter policy behaves). Tested twice: with the discordant counts
  (`Pairs`) and with the two arms' counts alone.
- *canary* at 50%, 10% and 1%: each request goes to the candidate with that probability;
  independent arms.
Plus, for the 10% and 1% canaries, what larger regressions they find within 2 minutes;
and gross breakage (a candidate that denies everything, from 10%) at 20/s and at one
decision a second, with both tests and with the mixture alone (the guard before the
exact test of decision 0034).

(b) **A/A false alarms**: 30-minute rollouts (60 looks) of identical releases, all five
metrics checked at every look (deny 10% and hold 5% of decided, rejection 20% of held and
resolved, failure 3% of reported outcomes, limit hits 1% of decided), in canaries of 50%,
10% and 1%; and in shadow, where only the three decision-time metrics exist for the
candidate, with releases that differ on 1% of requests both ways (same rates, "churn").
A rollout is a false alarm if any metric regresses at any look.

Also at a quiet agent's rate (one decision a second, `QUIET`) in 50% and 10% canaries,
where both arms stay under `min_n` for minutes and the exact test for gross breakage
looks at small counts again and again.

For contrast, the 50% canary with no minimum effect (the evidence alone decides), under
this test and under what a sequential test replaces: a one-sided z-test at the same level
per metric, made afresh at every look.

(c) The cost of one `compare` call.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import timeit
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from decide import python_speed, report_head, say  # noqa: E402

from oversight.releases.guard_stats import Arm, GuardSettings, Pairs, compare  # noqa: E402

RATE = 20  # decisions per second
QUIET = 1  # decisions per second of a quiet agent, where the arms stay small for minutes
LOOK = 30  # seconds between looks
TARGET = 120  # seconds: a +5-point regression must be found within this
DETECT_HORIZON = 3600  # seconds simulated before a run counts as undetected
AA_HORIZON = 1800  # the A/A rollout's length
BASELINES = (0.02, 0.10, 0.30)
EFFECT = 0.05
CANARY_SHARES = (0.50, 0.10, 0.01)
CHURN = 0.01  # share of requests on which A/A shadow releases disagree (both ways)
AA_RATES = {"deny": 0.10, "hold": 0.05, "rejection": 0.20, "failure": 0.03, "limit": 0.01}


def binomial(rng: random.Random, n: int, p: float) -> int:
    """An exact Binomial(n, p) draw: inversion, walking the support outwards from the mode.

    Any fixed order of the support gives an exact draw; starting at the mode makes the walk
    take about sqrt(n p q) steps instead of n p.
    """
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    q = 1.0 - p
    mode = min(n, int((n + 1) * p))
    log_pmf = (
        math.lgamma(n + 1)
        - math.lgamma(mode + 1)
        - math.lgamma(n - mode + 1)
        + mode * math.log(p)
        + (n - mode) * math.log(q)
    )
    u = rng.random()
    low = high = mode
    f_low = f_high = math.exp(log_pmf)
    u -= f_low
    if u < 0.0:
        return mode
    while low > 0 or high < n:
        if high < n:
            f_high *= (n - high) / (high + 1) * p / q
            high += 1
            u -= f_high
            if u < 0.0:
                return high
        if low > 0:
            f_low *= low / (n - low + 1) * q / p
            low -= 1
            u -= f_low
            if u < 0.0:
                return low
    return mode  # rounding left a sliver of probability unassigned: give it to the mode


def summary(delays: list[float | None]) -> dict[str, Any]:
    """Percentiles of the delay (nearest rank; None where that rank was never detected)."""
    runs = len(delays)
    ranked = sorted(delays, key=lambda d: math.inf if d is None else d)

    def rank(q: float) -> float | None:
        return ranked[max(0, math.ceil(q * runs) - 1)]

    found = [d for d in delays if d is not None]
    return {
        "runs": runs,
        "p50_s": rank(0.50),
        "p90_s": rank(0.90),
        "p99_s": rank(0.99),
        "max_s": ranked[-1],
        "within_2_min": sum(d <= TARGET for d in found) / runs,
        "detected": len(found) / runs,
    }


def detect_shadow(
    rng: random.Random, base: float, effect: float, *, use_pairs: bool, settings: GuardSettings
) -> float | None:
    """Seconds until a paired regression is found, or None."""
    window = RATE * LOOK
    extra_chance = effect / (1.0 - base)  # of what stable allows, the candidate denies
    n = stable_hits = candidate_only = 0
    for look in range(1, DETECT_HORIZON // LOOK + 1):
        hits = binomial(rng, window, base)
        n += window
        stable_hits += hits
        candidate_only += binomial(rng, window - hits, extra_chance)
        verdict = compare(
            "deny rate",
            Arm(stable_hits, n),
            Arm(stable_hits + candidate_only, n),
            metrics=5,
            settings=settings,
            pairs=Pairs(candidate_only, 0) if use_pairs else None,
        )
        if verdict.regressed:
            return look * LOOK
    return None


def detect_canary(
    rng: random.Random,
    base: float,
    effect: float,
    *,
    share: float,
    settings: GuardSettings,
    rate: float = RATE,
) -> float | None:
    """Seconds until a canary regression is found, or None."""
    window = round(rate * LOOK)
    s_hits = s_n = c_hits = c_n = 0
    for look in range(1, DETECT_HORIZON // LOOK + 1):
        to_candidate = binomial(rng, window, share)
        c_n += to_candidate
        s_n += window - to_candidate
        c_hits += binomial(rng, to_candidate, base + effect)
        s_hits += binomial(rng, window - to_candidate, base)
        verdict = compare(
            "deny rate", Arm(s_hits, s_n), Arm(c_hits, c_n), metrics=5, settings=settings
        )
        if verdict.regressed:
            return look * LOOK
    return None


def _arm_window(rng: random.Random, decided: int) -> dict[str, tuple[int, int]]:
    """One window of one release's five metrics, as (hits, n), at the A/A rates."""
    denied = binomial(rng, decided, AA_RATES["deny"])
    held = binomial(rng, decided - denied, AA_RATES["hold"] / (1.0 - AA_RATES["deny"]))
    rejected = binomial(rng, held, AA_RATES["rejection"])  # held ones resolved in the window
    reported = decided - denied - rejected
    return {
        "deny rate": (denied, decided),
        "hold rate": (held, decided),
        "reviewer rejection rate": (rejected, held),
        "failure rate": (binomial(rng, reported, AA_RATES["failure"]), reported),
        "limit-hit rate": (binomial(rng, decided, AA_RATES["limit"]), decided),
    }


def naive_regressed(stable: Arm, candidate: Arm, *, metrics: int, settings: GuardSettings) -> bool:
    """What the guard would do without a sequential test: a one-sided two-proportion z-test
    at the same per-metric level, made afresh at every look."""
    if min(stable.n, candidate.n) < settings.min_n:
        return False
    difference = candidate.rate - stable.rate
    pooled = (stable.hits + candidate.hits) / (stable.n + candidate.n)
    variance = pooled * (1.0 - pooled) * (1 / stable.n + 1 / candidate.n)
    if variance == 0.0 or difference < settings.min_effect:
        return False
    critical = NormalDist().inv_cdf(1.0 - settings.alpha / metrics)
    return difference / math.sqrt(variance) >= critical


def aa_canary(
    rng: random.Random,
    *,
    share: float,
    settings: GuardSettings,
    naive: bool = False,
    rate: float = RATE,
) -> str | None:
    """The metric that falsely alarmed in one A/A canary rollout, or None."""
    window = round(rate * LOOK)
    totals = {name: [0, 0, 0, 0] for name in _arm_window(rng, 0)}  # s hits, s n, c hits, c n
    for _ in range(AA_HORIZON // LOOK):
        to_candidate = binomial(rng, window, share)
        stable = _arm_window(rng, window - to_candidate)
        candidate = _arm_window(rng, to_candidate)
        for name, t in totals.items():
            t[0] += stable[name][0]
            t[1] += stable[name][1]
            t[2] += candidate[name][0]
            t[3] += candidate[name][1]
            stable_arm, candidate_arm = Arm(t[0], t[1]), Arm(t[2], t[3])
            if naive:
                if naive_regressed(stable_arm, candidate_arm, metrics=5, settings=settings):
                    return name
            elif compare(name, stable_arm, candidate_arm, metrics=5, settings=settings).regressed:
                return name
    return None


def aa_shadow(rng: random.Random, *, use_pairs: bool, settings: GuardSettings) -> str | None:
    """The metric that falsely alarmed in one A/A shadow rollout with churn, or None."""
    window = RATE * LOOK
    metrics = {"deny rate": AA_RATES["deny"], "hold rate": AA_RATES["hold"]}
    metrics["limit-hit rate"] = AA_RATES["limit"]
    totals = {name: [0, 0, 0, 0] for name in metrics}  # n, stable hits, cand. only, stable only
    for _ in range(AA_HORIZON // LOOK):
        for name, p in metrics.items():
            t = totals[name]
            hits = binomial(rng, window, p)
            t[0] += window
            t[1] += hits
            t[2] += binomial(rng, window - hits, CHURN / 2 / (1.0 - p))
            t[3] += binomial(rng, hits, CHURN / 2 / p)
            verdict = compare(
                name,
                Arm(t[1], t[0]),
                Arm(t[1] + t[2] - t[3], t[0]),
                metrics=len(metrics),
                settings=settings,
                pairs=Pairs(t[2], t[3]) if use_pairs else None,
            )
            if verdict.regressed:
                return name
    return None


def repeat(runs: int, seed: int, one: Callable[[random.Random], Any]) -> list[Any]:
    rng = random.Random(seed)  # noqa: S311 -- a simulation, not secrets
    return [one(rng) for _ in range(runs)]


def compare_cost() -> dict[str, float]:
    stable, candidate = Arm(12_100, 120_000), Arm(12_350, 120_000)
    pairs = Pairs(400, 150)
    calls = 20_000
    plain = min(
        timeit.repeat(lambda: compare("deny rate", stable, candidate, metrics=5), number=calls)
    )
    paired = min(
        timeit.repeat(
            lambda: compare("deny rate", stable, candidate, metrics=5, pairs=pairs), number=calls
        )
    )
    return {"compare_us": plain / calls * 1e6, "compare_with_pairs_us": paired / calls * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--tau", type=float, default=None, help="override the default tau")
    parser.add_argument("--min-n", type=int, default=None, help="override the default min_n")
    args = parser.parse_args()
    settings = GuardSettings()
    if args.tau is not None or args.min_n is not None:
        settings = GuardSettings(
            tau=args.tau if args.tau is not None else settings.tau,
            min_n=args.min_n if args.min_n is not None else settings.min_n,
        )
    started = datetime.now(UTC)
    report: dict[str, Any] = report_head("guard")
    report["python_speed_us"] = python_speed()
    report["settings"] = vars(settings) | {"rate_per_s": RATE, "look_s": LOOK}
    runs, seed = args.runs, args.seed

    detection: list[dict[str, Any]] = []
    for base in BASELINES:
        for use_pairs in (True, False):
            stage = "shadow, with pairs" if use_pairs else "shadow, counts only"
            delays = repeat(
                runs,
                seed,
                lambda r, b=base, u=use_pairs: detect_shadow(
                    r, b, EFFECT, use_pairs=u, settings=settings
                ),
            )
            detection.append({"stage": stage, "baseline": base, **summary(delays)})
            say(f"{stage:<22} base {base:.0%}: {detection[-1]}")
        for share in CANARY_SHARES:
            delays = repeat(
                runs,
                seed,
                lambda r, b=base, s=share: detect_canary(r, b, EFFECT, share=s, settings=settings),
            )
            detection.append({"stage": f"canary {share:.0%}", "baseline": base, **summary(delays)})
            say(f"canary {share:<15.0%} base {base:.0%}: {detection[-1]}")
    report["detection"] = detection

    larger: list[dict[str, Any]] = []
    for share in CANARY_SHARES[1:]:
        for effect in (0.10, 0.20, 0.40):
            delays = repeat(
                runs,
                seed,
                lambda r, s=share, e=effect: detect_canary(r, 0.10, e, share=s, settings=settings),
            )
            larger.append({"stage": f"canary {share:.0%}", "baseline": 0.10, "effect": effect})
            larger[-1] |= summary(delays)
            say(f"canary {share:.0%} +{effect:.0%} from 10%: {larger[-1]}")
    report["larger_regressions"] = larger

    # Gross breakage: a candidate that denies everything, from a 10% deny rate, at this
    # rate and at a quiet agent's (one decision a second), with and without the early test.
    mixture_alone = replace(settings, early_share=1e-12)  # the guard before the early test
    gross: list[dict[str, Any]] = []
    for rate in (RATE, QUIET):
        for share in CANARY_SHARES:
            for test, chosen in (("both tests", settings), ("mixture alone", mixture_alone)):
                delays = repeat(
                    runs,
                    seed,
                    lambda r, s=share, c=chosen, q=rate: detect_canary(
                        r, 0.10, 0.90, share=s, settings=c, rate=q
                    ),
                )
                gross.append({"stage": f"canary {share:.0%}", "rate_per_s": rate, "test": test})
                gross[-1] |= summary(delays)
                say(f"all denied, {rate}/s, canary {share:.0%}, {test}: {gross[-1]}")
    report["gross_breakage"] = gross

    false_alarms: list[dict[str, Any]] = []
    for share in CANARY_SHARES:
        alarms = repeat(runs, seed, lambda r, s=share: aa_canary(r, share=s, settings=settings))
        false_alarms.append(_aa_row(f"canary {share:.0%}", 5, alarms))
        say(str(false_alarms[-1]))
    for share in CANARY_SHARES[:2]:  # a quiet agent: both arms under min_n for minutes
        alarms = repeat(
            runs, seed, lambda r, s=share: aa_canary(r, share=s, settings=settings, rate=QUIET)
        )
        false_alarms.append(_aa_row(f"canary {share:.0%} at {QUIET}/s", 5, alarms))
        say(str(false_alarms[-1]))
    for use_pairs in (True, False):
        alarms = repeat(
            runs, seed, lambda r, u=use_pairs: aa_shadow(r, use_pairs=u, settings=settings)
        )
        stage = "shadow, 1% churn, " + ("with pairs" if use_pairs else "counts only")
        false_alarms.append(_aa_row(stage, 3, alarms))
        say(str(false_alarms[-1]))
    bare = replace(settings, min_effect=0.0)  # the evidence alone decides
    for naive in (False, True):
        alarms = repeat(
            runs, seed, lambda r, v=naive: aa_canary(r, share=0.5, settings=bare, naive=v)
        )
        test = "z-test afresh at every look" if naive else "this test"
        false_alarms.append(_aa_row(f"canary 50%, min_effect 0, {test}", 5, alarms))
        say(str(false_alarms[-1]))
    report["aa"] = false_alarms

    report["cost"] = compare_cost()
    say(f"cost: {report['cost']}")
    report["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    path = args.json or ROOT / "bench" / "results" / f"guard-{started:%Y-%m-%d-%H%M}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    say(f"wrote {path}")


def _aa_row(stage: str, metrics: int, alarms: list[str | None]) -> dict[str, Any]:
    fired = [a for a in alarms if a is not None]
    return {
        "stage": stage,
        "metrics": metrics,
        "looks": AA_HORIZON // LOOK,
        "runs": len(alarms),
        "false_alarms": len(fired),
        "rate": len(fired) / len(alarms),
        "by_metric": {name: fired.count(name) for name in sorted(set(fired))},
    }


if __name__ == "__main__":
    main()
