"""The behaviour diff page: two sides of an agent (releases or windows) chosen in a small
GET form, and what differs between them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from oversight.agents.access import get_agent_for_user
from oversight.incidents.behaviour_diff import SideError, behaviour_diff
from oversight.incidents.diff_display import page_row
from oversight.incidents.diff_sides import ENVIRONMENTS, default_sides, sides_parse
from oversight.releases.selectors import release_list


@login_required
@require_GET
def behaviour_diff_view(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug)
    asked = "left" in request.GET or "right" in request.GET
    default_left, default_right = default_sides(agent=agent)
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
        section: [page_row(row, min_sample=diff.min_sample) for row in getattr(diff, section)]
        for section in ("flagged", "actions", "decisions", "rates", "families", "params")
    }
    only = {
        side: [row for row in rows["actions"] + rows["families"] if row["only"] == side]
        for side in ("left", "right")
    }
    context |= {"diff": diff, "rows": rows, "only": only}
    return render(request, "incidents/behaviour_diff.html", context)
