"""A team's change control, on the team page: from which risk tier up a change to an
agent needs another person's approval and a staged rollout (admins change it)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from oversight.accounts import roles
from oversight.accounts.models import Team
from oversight.accounts.services import team_change_control_update
from oversight.audit.actors import Actor
from oversight.core.views import team_page


@login_required
@require_POST
def team_change_control_view(request: HttpRequest, slug: str) -> HttpResponse:
    if not roles.is_admin(request.user):
        raise PermissionDenied("Only admins change a team's change control.")
    team = get_object_or_404(Team, slug=slug)
    typed = {
        "staged_releases_from": request.POST.get("staged_releases_from", ""),
        "require_reversibility": request.POST.get("require_reversibility") == "on",
        "trace_url": request.POST.get("trace_url", ""),
    }
    try:
        team_change_control_update(actor=Actor.for_user(request.user), team=team, **typed)
    except ValidationError as exc:
        # The team page again, with what was typed (nothing was saved), and why not.
        messages.error(request, f"Not saved: {' '.join(exc.messages)}")
        team = get_object_or_404(Team, slug=slug)
        for field, value in typed.items():
            setattr(team, field, value)
        return team_page(request, team, member=True, status=422)
    messages.success(request, f"Change control of {team.name} saved.")
    return redirect("team", slug=team.slug)
