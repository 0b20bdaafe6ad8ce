"""A behaviour diff as people and programs read it: its figures in words, one sentence a
difference (the page's rows), and the whole diff as JSON (the API's body, with those
sentences)."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from oversight.incidents.behaviour_diff import (
    BehaviourDiff,
    Difference,
    ParamDifference,
    SideSummary,
)
from oversight.releases.guard_stats import Arm


def percent(arm: Arm) -> str:
    return f"{arm.rate * 100:.1f}%" if arm.n else "no data"


def points(difference: float) -> str:
    return f"{difference * 100:+.1f} points"


def p_value(p: float) -> str:
    """0.0312 -> "0.031"; tiny values as a bound, which is all a person needs."""
    if p < 1e-4:
        return "< 0.0001"
    return f"{p:.2g}" if p < 0.1 else f"{p:.2f}"


def number(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"


def _verdict(row: Difference | ParamDifference, min_sample: int) -> str:
    if not row.enough:
        return f"too few to judge (each side needs {min_sample:,})"
    if row.flagged:
        return "flagged: significant after correction"
    return "not significant after correction"


def explain(row: Difference | ParamDifference, *, min_sample: int) -> str:
    """One plain sentence with the figures, the test and the verdict."""
    test = row.significance
    tested = f"{test.test}, p {p_value(test.p_value)}"
    if row.enough:
        tested += f" ({p_value(row.p_adjusted)} corrected)"
    if isinstance(row, ParamDifference):
        a, b = row.left, row.right
        figures = (
            f"p50 {number(a.p50)} → {number(b.p50)}, p90 {number(a.p90)} → {number(b.p90)}, "
            f"max {number(a.max)} → {number(b.max)} ({a.count:,} and {b.count:,} values)"
        )
        if a.count and b.count:
            tested = f"D = {test.statistic:.3f}, {tested}"
    else:
        a, b = row.left, row.right
        figures = (
            f"{percent(a)} ({a.hits:,} of {a.n:,}) → {percent(b)} ({b.hits:,} of {b.n:,}), "
            f"{points(row.difference)}"
        )
        if row.only:
            figures += f", seen on the {row.only} only"
    return f"{label(row)}: {figures}; {tested}; {_verdict(row, min_sample)}."


def label(row: Difference | ParamDifference) -> str:
    """ "decision denied", "action payments.wire", "failure rate", "payments.refund
    params.amount"."""
    if isinstance(row, ParamDifference) or row.kind == row.name:
        return row.name
    return f"{row.kind} {row.name}"


def _share(arm: Arm, *, out_of: bool) -> str:
    """A share of decisions, "4.0% (12)"; or a rate of a subset, "4.0% (12 of 300)"."""
    return f"{percent(arm)} ({arm.hits:,}{f' of {arm.n:,}' if out_of else ''})"


def page_row(row: Difference | ParamDifference, *, min_sample: int) -> dict[str, Any]:
    """One row of the page's tables, its cells in words."""
    cells: dict[str, Any] = {
        "label": label(row),
        "name": row.name,
        "test": row.significance.test,
        "p": p_value(row.significance.p_value),
        "p_adjusted": p_value(row.p_adjusted) if row.enough else "—",
        "enough": row.enough,
        "flagged": row.flagged,
        "explain": explain(row, min_sample=min_sample),
    }
    if isinstance(row, Difference):
        cells |= {
            "only": row.only,
            "left": _share(row.left, out_of=row.kind == row.name),
            "right": _share(row.right, out_of=row.kind == row.name),
            "change": points(row.difference),
            "kind": row.kind,
        }
    else:
        for side in ("left", "right"):
            found = getattr(row, side)
            cells[side] = {
                "count": f"{found.count:,}",
                **{k: number(getattr(found, k)) for k in ("mean", "p50", "p90", "max")},
            }
        cells |= {"action": row.action, "key": row.key, "gap": f"{row.significance.statistic:.3f}"}
    return cells


def _side_json(summary: SideSummary) -> dict[str, Any]:
    side = summary.side
    return {
        "label": summary.label,
        "query": side.query,
        "version": side.version,
        "start": side.start.isoformat() if side.start else None,
        "end": side.end.isoformat() if side.end else None,
        "environment": side.environment,
        "decisions": summary.decisions,
    }


def _row_json(row: Difference | ParamDifference, min_sample: int) -> dict[str, Any]:
    found = {"kind": row.kind, "name": row.name, **asdict(row)}
    if isinstance(row, Difference):
        for side in ("left", "right"):
            arm = getattr(row, side)
            found[side] = {"hits": arm.hits, "n": arm.n, "rate": arm.rate}
        found["difference"] = row.difference
    found["explain"] = explain(row, min_sample=min_sample)
    return found


def as_json(diff: BehaviourDiff) -> dict[str, Any]:
    """The whole diff, JSON-ready: sides, settings, flagged differences first, then every
    comparison by section, and what one side alone has."""

    def rows(found: list[Any]) -> list[dict[str, Any]]:
        return [_row_json(row, diff.min_sample) for row in found]

    return {
        "agent": diff.agent,
        "left": _side_json(diff.left),
        "right": _side_json(diff.right),
        "alpha": diff.alpha,
        "min_sample": diff.min_sample,
        "comparisons": diff.comparisons,
        "flagged": rows(diff.flagged),
        "actions": rows(diff.actions),
        "decisions": rows(diff.decisions),
        "rates": rows(diff.rates),
        "families": rows(diff.families),
        "params": rows(diff.params),
        "only": {
            side: {"actions": diff.only("action", side), "families": diff.only("family", side)}
            for side in ("left", "right")
        },
    }
