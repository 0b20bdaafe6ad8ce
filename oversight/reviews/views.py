"""Reviews in the browser: the list, an agent's review page, removing grants, the outcome,
retiring an agent, and a team's review periods."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from oversight.accounts import roles
from oversight.accounts.roles import RoleRequired
from oversight.accounts.services import team_review_settings_update
from oversight.agents.access import get_agent_for_user
from oversight.agents.constants import CHANGE, AgentStatus
from oversight.agents.models import Agent
from oversight.audit.actors import Actor
from oversight.reviews import selectors, services
from oversight.reviews.constants import ReviewOutcome
from oversight.reviews.forms import RecertifyForm, RetireForm, TeamReviewSettingsForm
from oversight.reviews.notices import day


@login_required
@require_GET
def review_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "overdue": selectors.reviews_overdue(user=user),
        "unowned": selectors.agents_unowned(user=user),
        "agents": selectors.reviews_list(user=user),
        "today": timezone.localdate(),
    }
    return render(request, "reviews/list.html", context)


def _context(request: HttpRequest, agent: Agent, **extra: Any) -> dict[str, Any]:
    now = timezone.now()
    rows = selectors.grant_rows(agent=agent, now=now)
    return {
        "agent": agent,
        "can_review": selectors.can_review(request.user, agent),
        "grants": rows,
        "unused_count": sum(1 for row in rows if row.unused and not row.expired),
        "open_review": selectors.review_open(agent=agent),
        "history": selectors.review_history(agent=agent),
        "alerts": selectors.recent_alerts(agent=agent, now=now),
        "denials": selectors.denial_rate(agent=agent, now=now),
        "recertify_form": extra.pop("recertify_form", None) or RecertifyForm(),
        "retire_form": extra.pop("retire_form", None) or RetireForm(),
        **extra,
    }


@login_required
@require_GET
def review_page(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug)
    return render(request, "reviews/page.html", _context(request, agent))


@login_required
@require_POST
def review_grant_remove(request: HttpRequest, slug: str, grant_id: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    error = ""
    try:
        services.review_grant_remove(
            actor=Actor.for_user(request.user), user=request.user, agent=agent, grant_id=grant_id
        )
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        context = _context(request, agent, grant_error=error)
        return render(request, "reviews/_grants.html", context, status=409 if error else 200)
    if error:
        messages.error(request, error)
    return redirect("reviews:agent", slug=agent.slug)


@login_required
@require_POST
def review_recertify(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    form = RecertifyForm(request.POST)
    if form.is_valid():
        try:
            review = services.review_recertify(
                actor=Actor.for_user(request.user),
                user=request.user,
                agent=agent,
                purpose_confirmed=form.cleaned_data["purpose_confirmed"],
                notes=form.cleaned_data["notes"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            how = "" if review.outcome == ReviewOutcome.RECERTIFIED else " (access reduced first)"
            agent.refresh_from_db(fields=["status"])
            paused = (
                " It stays paused: its owner sets it active on its Edit page."
                if agent.status == AgentStatus.PAUSED
                else ""
            )
            messages.success(
                request,
                f"{agent.name} re-certified{how}. "
                f"Next re-certification due {day(review.next_review_due)}.{paused}",
            )
            return redirect("reviews:agent", slug=agent.slug)
    context = _context(request, agent, recertify_form=form)
    return render(request, "reviews/page.html", context, status=422)


@login_required
@require_POST
def agent_retire_view(request: HttpRequest, slug: str) -> HttpResponse:
    """Retire from the review page (closing the review) or from the agent's page."""
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    form = RetireForm(request.POST)
    from_review = request.POST.get("from") == "review"
    if form.is_valid():
        actor, reason = Actor.for_user(request.user), form.cleaned_data["reason"]
        try:
            if from_review:
                services.review_retire(actor=actor, user=request.user, agent=agent, reason=reason)
            else:
                services.agent_retire(actor=actor, agent=agent, reason=reason)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                f"{agent.name} is retired: tokens revoked, grants disabled, pending actions "
                "cancelled. It stays in the registry, read-only.",
            )
            return redirect("reviews:agent" if from_review else "agents:detail", slug=agent.slug)
    context = _context(request, agent, retire_form=form)
    return render(request, "reviews/page.html", context, status=422)


@login_required
@require_http_methods(["GET", "POST"])
def team_settings_view(request: HttpRequest, slug: str) -> HttpResponse:
    """The team's review periods: every member sees them, admins change them (403 for
    anyone else's change; 404 outside the team)."""
    team = selectors.team_for_review_settings(user=request.user, slug=slug)
    can_change = roles.is_admin(request.user)
    if request.method == "POST" and not can_change:
        raise RoleRequired("Only admins change a team's review periods.")
    form = TeamReviewSettingsForm(request.POST or None, instance=team)
    if request.method == "POST" and form.is_valid():
        try:
            team_review_settings_update(
                actor=Actor.for_user(request.user), team=team, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Re-certification periods of {team.name} saved.")
            return redirect("team-reviews", slug=team.slug)
    context = {"team": team, "form": form, "can_change": can_change}
    return render(request, "reviews/team_settings.html", context)
