"""A release's rollout, from its page: start, approve, advance, pause, resume, roll back,
cancel; and the panel that shows it live (polled by htmx)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from oversight.agents.access import get_agent_for_user
from oversight.agents.constants import CHANGE
from oversight.agents.models import Agent
from oversight.agents.permissions import user_has_agent_perm
from oversight.audit.actors import Actor
from oversight.releases import rollouts, selectors
from oversight.releases.forms import RolloutStartForm
from oversight.releases.models import Release, Rollout, RolloutState


def rollout_panel_context(request: HttpRequest, agent: Agent, release: Release) -> dict[str, Any]:
    """What the release page's rollout panel shows."""
    history = list(selectors.rollouts_of(release=release))
    live = next(
        (
            r
            for r in history
            if r.state
            in (RolloutState.AWAITING_APPROVAL, RolloutState.RUNNING, RolloutState.PAUSED)
        ),
        None,
    )
    other = rollouts.live_rollout(agent) if live is None else None
    gated = rollouts.approval_required(agent)
    return {
        "agent": agent,
        "release": release,
        "stable": release.pk == agent.stable_release_id,
        "can_change": user_has_agent_perm(request.user, CHANGE, agent),
        "live": live,
        "other_live": other,
        "past": [r for r in history if r is not live],
        "in_stage": selectors.decisions_in_stage(rollout=live) if live else 0,
        "staging_untokened": selectors.staging_untokened(rollout=live),
        "may_approve": live is not None
        and request.user.pk not in (release.author_id, live.created_by_id),
        "start_form": RolloutStartForm(staged_only=gated),
        "approval_required": gated,
        # One click makes it stable: under change control, only content once in force.
        "one_click": not gated or selectors.release_was_stable(release=release),
        "shadow": selectors.shadow_differences(agent=agent, version=release.version),
    }


@login_required
@require_GET
def rollout_panel_view(request: HttpRequest, slug: str, version: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug)
    release = selectors.release_get(agent=agent, version=version)
    context = rollout_panel_context(request, agent, release)
    return render(request, "releases/_rollout.html", context)


@login_required
@require_POST
def rollout_start_view(request: HttpRequest, slug: str, version: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    release = selectors.release_get(agent=agent, version=version)
    form = RolloutStartForm(request.POST, staged_only=rollouts.approval_required(agent))
    if not form.is_valid():
        messages.error(request, f"The rollout was not started: {form.errors_said()}")
        return redirect("releases:detail", slug=agent.slug, version=version)
    try:
        rollout = rollouts.rollout_start(
            actor=Actor.for_user(request.user), release=release, **form.arguments()
        )
    except ValidationError as exc:
        messages.error(request, f"The rollout was not started: {' '.join(exc.messages)}")
    else:
        if rollout.state == RolloutState.AWAITING_APPROVAL:
            messages.info(request, f"The rollout of v{version} awaits another person's approval.")
        else:
            messages.success(request, f"v{version} is rolling out: {rollout.get_stage_display()}.")
    return redirect("releases:detail", slug=agent.slug, version=version)


_STEPS: dict[str, tuple[Callable[..., Rollout], str]] = {
    "approve": (rollouts.rollout_approve, "Approved: the rollout has started."),
    "advance": (rollouts.rollout_advance, "Advanced to the next stage."),
    "pause": (rollouts.rollout_pause, "Paused: the candidate decides nothing until resumed."),
    "resume": (rollouts.rollout_resume, "Resumed."),
    "roll-back": (rollouts.rollout_roll_back, "Rolled back: stable decides everything."),
    "cancel": (rollouts.rollout_cancel, "Cancelled."),
}


@login_required
@require_POST
def rollout_step_view(request: HttpRequest, slug: str, pk: int, step: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    rollout = get_object_or_404(Rollout.objects.select_related("release"), pk=pk, agent=agent)
    if step not in _STEPS:
        return HttpResponse(status=404)
    service, done = _STEPS[step]
    arguments: dict[str, Any] = {"actor": Actor.for_user(request.user), "rollout": rollout}
    if step in ("pause", "roll-back", "cancel"):
        who = request.user.get_username()
        arguments["why"] = (request.POST.get("why", "").strip() or f"by {who}")[:300]
    elif step == "advance":  # the service asks for a reason where the guard has not judged
        arguments["why"] = request.POST.get("why", "").strip()[:300]
    try:
        rollout = service(**arguments)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if rollout.state == RolloutState.COMPLETED:
            done = f"v{rollout.release.version} is stable: the rollout is complete."
        messages.success(request, done)
    return redirect("releases:detail", slug=agent.slug, version=rollout.release.version)
