"""The behaviour series as an inline SVG bar chart (no JavaScript): a stacked bar per
bucket (allowed, held, denied, failed and rejected), the break marked."""

from __future__ import annotations

from typing import Any

WIDTH, HEIGHT = 720, 120
PARTS = ("allowed", "held", "denied", "failed", "rejected")


def series_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    rows = report.get("series") or []
    if not rows:
        return None
    actions = max((row["actions"] for row in rows), default=0)
    peak = actions or 1  # the scale of the bars
    step = WIDTH / len(rows)
    bars = []
    for index, row in enumerate(rows):
        y = HEIGHT
        for part in PARTS:
            height = row.get(part, 0) / peak * HEIGHT
            if height > 0:
                y -= height
                bars.append(
                    {
                        "x": round(index * step, 2),
                        "y": round(y, 2),
                        "w": round(max(step - 0.5, 0.5), 2),
                        "h": round(height, 2),
                        "part": part,
                        "at": row["at"],
                        "n": row.get(part, 0),
                    }
                )
    brk = report.get("break")
    marker = None
    if brk:
        at = [row["at"] for row in rows]
        if brk["at"] in at:
            marker = round(at.index(brk["at"]) * step, 2)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "bars": bars,
        "break_x": marker,
        "peak": actions,  # 0: no action in the window
        "first": rows[0]["at"],
        "last": rows[-1]["at"],
    }
