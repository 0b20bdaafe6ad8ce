"""The behaviour diff page: two sides of an agent (releases or windows) chosen in a small
GET form, and what differs between them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from oversight.agents.access import get_agent_for_user
from oversight.agents.models import Agent
from oversight.incidents.behaviour_diff import SideError, behaviour_diff
from oversight.incidents.diff_display import explain, label, number, p_value, percent, points
from oversight.incidents.diff_sides import ENVIRONMENTS, sides_parse
from oversight.releases.guard_stats import Arm
from oversight.releases.selectors import release_list


def _defaults(agent: Agent) -> tuple[str, str]:
    """The form before any choice: stable against a newer release (a candidate), else the
    release before stable against stable, else the last 12 hours against the 12 before."""
    stable = agent.stable_version
    versions = list(release_list(agent=agent).values_list("version", flat=True)[:50])
    if stable is not None and versions and versions[0] != stable:
        return f"v{stable}", f"v{versions[0]}"
    older = [v for v in versions if stable is not None and v < stable]
    if older:
        return f"v{older[0]}", f"v{stable}"
    return "24h/12h", "12h/now"


def _share(arm: Arm, *, out_of: bool) -> str:
    """ "4.0% (12)" for a share of decisions; "4.0% (12 of 300)" for a rate of a subset."""
    return f"{percent(arm)} ({arm.hits:,}{f' of {arm.n:,}' if out_of else ''})"


def _row(row: Any, min_sample: int) -> dict[str, Any]:
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
    if hasattr(row, "only"):
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


@login_required
@require_GET
def behaviour_diff_view(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug)
    asked = "left" in request.GET or "right" in request.GET
    default_left, default_right = _defaults(agent)
    form = {
        "left": request.GET.get("left", default_left),
        "right": request.GET.get("right", default_right),
        "env": request.GET.get("env", "production"),
    }
    context: dict[str, Any] = {
        "agent": agent,
        "form": form,
        "environments": list(ENVIRONMENTS),
        "versions": release_list(agent=agent).values_list("version", flat=True)[:50],
    }
    if not asked:
        return render(request, "incidents/behaviour_diff.html", context)
    try:
        left, right = sides_parse(
            agent=agent, left=form["left"], right=form["right"], environment=form["env"]
        )
    except SideError as exc:
        context |= {"error": str(exc), "error_field": exc.field}
        return render(request, "incidents/behaviour_diff.html", context, status=400)
    diff = behaviour_diff(agent=agent, left=left, right=right)
    rows = {
        section: [_row(row, diff.min_sample) for row in getattr(diff, section)]
        for section in ("flagged", "actions", "decisions", "rates", "families", "params")
    }
    only = {
        side: [row for row in rows["actions"] + rows["families"] if row["only"] == side]
        for side in ("left", "right")
    }
    context |= {"diff": diff, "rows": rows, "only": only}
    return render(request, "incidents/behaviour_diff.html", context)
