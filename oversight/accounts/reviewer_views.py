"""A team's reviewers, on the team page: added and removed by admins and the team's
owners (htmx, CSRF, audited by the services)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from oversight.accounts.forms import TeamReviewerForm
from oversight.accounts.models import Team
from oversight.accounts.selectors import team_for_reviewers
from oversight.accounts.services import team_reviewer_add, team_reviewer_remove
from oversight.audit.actors import Actor


def _section(
    request: HttpRequest, team: Team, *, form: TeamReviewerForm | None = None, message: str = ""
) -> HttpResponse:
    if not request.htmx:
        return redirect("team", slug=team.slug)
    from oversight.approvals.eligibility import team_unsatisfiable_rules  # approvals -> accounts

    context = {
        "team": team,
        "reviewers": list(team.reviewers),
        "can_manage_reviewers": True,
        "reviewer_form": form or TeamReviewerForm(team=team),
        "reviewers_message": message,
        # Said at once: which of the team's hold rules nobody can satisfy any more.
        "unsatisfiable": team_unsatisfiable_rules(team=team),
    }
    return render(request, "core/_team_reviewers.html", context)


@login_required
@require_POST
def team_reviewer_add_view(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_for_reviewers(user=request.user, slug=slug)
    form = TeamReviewerForm(request.POST, team=team)
    if not form.is_valid():
        return _section(request, team, form=form)
    person = form.cleaned_data["user"]
    try:
        team_reviewer_add(actor=Actor.for_user(request.user), team=team, user=person)
    except ValidationError as exc:
        form.add_error("user", exc)
        return _section(request, team, form=form)
    team.refresh_from_db()
    message = f"{person.get_username()} now reviews the held actions of {team.name}'s agents."
    return _section(request, team, message=message)


@login_required
@require_POST
def team_reviewer_remove_view(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    team = team_for_reviewers(user=request.user, slug=slug)
    person = get_object_or_404(get_user_model(), pk=user_id)
    team_reviewer_remove(actor=Actor.for_user(request.user), team=team, user=person)
    team.refresh_from_db()
    return _section(request, team, message=f"{person.get_username()} no longer reviews.")
