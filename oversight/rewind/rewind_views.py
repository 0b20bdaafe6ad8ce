"""Bulk rewind in the browser: choose a window, see the plan, start it, watch it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from oversight.agents.access import get_agent_for_user
from oversight.agents.constants import CHANGE
from oversight.agents.models import Agent
from oversight.agents.permissions import user_has_agent_perm
from oversight.audit.actors import Actor
from oversight.rewind import bulk
from oversight.rewind.forms import RewindForm, RewindStartForm, start_fields
from oversight.rewind.models import Rewind, RewindState
from oversight.rewind.plan import Scope, rewind_plan
from oversight.rewind.selectors import item_shown_as, rewind_progress, rewind_verdict


def _scope(agent: Agent, form: RewindForm) -> Scope:
    data = form.cleaned_data
    return Scope(
        agent=agent,
        since=data["since_at"],
        until=data["until_at"],
        release_version=data.get("release"),
        session_id=data.get("session") or "",
        resource=data.get("resource") or "*",
    )


@login_required
@require_http_methods(["GET", "POST"])
def rewind_plan_view(request: HttpRequest, slug: str) -> HttpResponse:
    """GET with a window: the plan, its window resolved to absolute bounds once. POST:
    start the plan that was shown (owners, admins); when the window holds more to do
    than it said, the plan as it is now instead."""
    agent = get_agent_for_user(request, slug)
    can_change = user_has_agent_perm(request.user, CHANGE, agent)
    if request.method == "POST":
        if not can_change:
            return HttpResponse("Only the agent's owners and admins rewind it.", status=403)
        return _start(request, agent)
    form = RewindForm(request.GET or None)
    plan = None
    if form.is_bound and form.is_valid():
        try:
            plan = rewind_plan(scope=_scope(agent, form))
        except ValidationError as exc:
            form.add_error(None, exc)
    return _plan_page(request, agent, form, plan, can_change=can_change)


def _start(request: HttpRequest, agent: Agent) -> HttpResponse:
    form = RewindStartForm(request.POST)
    plan = None
    if form.is_valid():
        scope = _scope(agent, form)
        data = form.cleaned_data
        shown = None
        if data.get("planned_to_undo") is not None and data.get("planned_to_cancel") is not None:
            shown = bulk.Shown(data["planned_to_undo"], data["planned_to_cancel"])
        try:
            rewind = bulk.rewind_create(
                actor=Actor.for_user(request.user), scope=scope, shown=shown
            )
            return redirect("rewind:detail", pk=rewind.pk)
        except bulk.RewindUnderWay as exc:  # a double click, a resubmit: the one running
            messages.warning(request, " ".join(exc.messages))
            return redirect("rewind:detail", pk=exc.rewind.pk)
        except bulk.PlanChanged as exc:
            form.add_error(None, exc)
            plan = rewind_plan(scope=scope)
        except ValidationError as exc:
            form.add_error(None, exc)
    return _plan_page(request, agent, form, plan, can_change=True)


def _plan_page(
    request: HttpRequest,
    agent: Agent,
    form: RewindForm,
    plan: dict[str, Any] | None,
    *,
    can_change: bool,
) -> HttpResponse:
    context: dict[str, Any] = {
        "agent": agent,
        "form": form,
        "plan": plan,
        "start": start_fields(plan, form.cleaned_data) if plan else None,
        "can_change": can_change,
    }
    return render(request, "rewind/plan.html", context)


def _detail(request: HttpRequest, pk: int) -> tuple[Rewind, Agent]:
    rewind = get_object_or_404(Rewind.objects.select_related("agent", "created_by"), pk=pk)
    agent = get_agent_for_user(request, rewind.agent.slug)  # 404 unless visible
    return rewind, agent


@login_required
@require_GET
def rewind_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    rewind, agent = _detail(request, pk)
    items = list(rewind.items.select_related("action", "compensation").order_by("position")[:500])
    cancelled = rewind.state == RewindState.CANCELLED
    for item in items:
        item.shown_as = item_shown_as(item, rewind_cancelled=cancelled)
    counts = rewind_progress(rewind=rewind)
    context = {
        "rewind": rewind,
        "agent": agent,
        "items": items,
        "counts": counts,
        "verdict": rewind_verdict(rewind=rewind, counts=counts),
        "can_change": user_has_agent_perm(request.user, CHANGE, agent),
        "may_approve": request.user.pk != rewind.created_by_id,
    }
    template = "rewind/_progress.html" if request.htmx else "rewind/detail.html"
    return render(request, template, context)


_STEPS = {
    "approve": bulk.rewind_approve,
    "pause": bulk.rewind_pause,
    "resume": bulk.rewind_resume,
    "cancel": bulk.rewind_cancel,
}


@login_required
@require_POST
def rewind_step_view(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    rewind, agent = _detail(request, pk)
    if step not in _STEPS:
        return HttpResponse(status=404)
    if not user_has_agent_perm(request.user, CHANGE, agent):
        return HttpResponse("Only the agent's owners and admins rewind it.", status=403)
    try:
        _STEPS[step](actor=Actor.for_user(request.user), rewind=rewind)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("rewind:detail", pk=rewind.pk)
