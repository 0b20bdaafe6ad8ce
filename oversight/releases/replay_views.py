"""The release page's replay: the agent's recorded decisions of a window re-decided under
this release (oversight/releases/replay.py), shown as totals, transitions and examples."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from oversight.agents.access import get_agent_for_user
from oversight.lib.htmx import bad_request
from oversight.releases import selectors
from oversight.releases.replay import replay

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_WINDOW = "7d"
# A page answers in seconds: past this many recorded decisions (the newest are kept), the
# report says it stopped early; `manage.py policy_replay` has no such cap.
MAX_ROWS = 200_000


@login_required
@require_GET
def release_replay_view(request: HttpRequest, slug: str, version: int) -> HttpResponse:
    """A read (nothing is written), so a GET: anyone who may view the agent may run it."""
    agent = get_agent_for_user(request, slug)
    release = selectors.release_get(agent=agent, version=version)
    window = request.GET.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        return bad_request(request, f"The window {window!r} is not one of {', '.join(WINDOWS)}.")
    report = replay(
        agent=agent,
        release=release,
        since=timezone.now() - WINDOWS[window],
        max_rows=MAX_ROWS,
    )
    context = {"agent": agent, "release": release, "report": report, "window": window}
    template = "releases/_replay.html" if request.htmx else "releases/replay.html"
    return render(request, template, context)
