"""An agent's releases: the list, one release, two side by side, and rollback."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from oversight.agents.access import get_agent_for_user
from oversight.agents.constants import CHANGE
from oversight.audit.actors import Actor
from oversight.releases import selectors
from oversight.releases.rollout_views import rollout_panel_context
from oversight.releases.rollouts import live_rollout
from oversight.releases.services import release_rollback


@login_required
@require_GET
def release_list_view(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug)
    releases = selectors.release_history(agent=agent)
    context = {"agent": agent, "releases": releases, "live": live_rollout(agent)}
    return render(request, "releases/list.html", context)


@login_required
@require_GET
def release_detail_view(request: HttpRequest, slug: str, version: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug)
    release = selectors.release_get(agent=agent, version=version)
    context = {
        **rollout_panel_context(request, agent, release),
        "config": selectors.config_rows(release),
        "items": selectors.release_items(release),
        "older": agent.stable_version is not None and release.version < agent.stable_version,
        "fate": selectors.release_fate(agent=agent, release=release),
    }
    return render(request, "releases/detail.html", context)


@login_required
@require_GET
def release_compare_view(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug)
    try:
        old_version, new_version = int(request.GET["old"]), int(request.GET["new"])
    except (KeyError, ValueError):
        stable = agent.stable_version or 1
        old_version, new_version = max(stable - 1, 1), stable
        asked = [request.GET[key] for key in ("old", "new") if key in request.GET]
        if asked:  # an address with something else than two versions: say what is shown
            messages.error(
                request,
                f"{' and '.join(repr(a) for a in asked)}: not two version numbers;"
                f" showing v{old_version} and v{new_version}.",
            )
    old = selectors.release_get(agent=agent, version=old_version)
    new = selectors.release_get(agent=agent, version=new_version)
    context = {
        "agent": agent,
        "old": old,
        "new": new,
        "diff": selectors.release_compare(old=old, new=new),
        "versions": selectors.release_list(agent=agent).values_list("version", flat=True),
    }
    return render(request, "releases/compare.html", context)


@login_required
@require_POST
def release_rollback_view(request: HttpRequest, slug: str, version: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    release = selectors.release_get(agent=agent, version=version)
    try:
        new = release_rollback(actor=Actor.for_user(request.user), release=release)
    except ValidationError as exc:
        messages.error(request, f"Could not roll back to v{version}: {' '.join(exc.messages)}")
        return redirect("releases:detail", slug=agent.slug, version=version)
    if new is None:
        messages.info(request, f"v{version}'s content is already in force.")
        return redirect("releases:list", slug=agent.slug)
    messages.success(request, f"Rolled back to v{version}: v{new.version} is in force.")
    return redirect("releases:detail", slug=agent.slug, version=new.version)
