"""The kill-switch menu of the top bar: engage or release a switch, with a reason.

Two clicks and the reason from any page: the menu opens, the reason is typed, the button
of the scope is pressed (its words say what stops). The reason is the deliberate step;
there is no separate confirmation."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from oversight.agents.selectors import agents_with_perm
from oversight.audit.actors import Actor
from oversight.killswitch import services
from oversight.killswitch.permissions import can_press
from oversight.killswitch.selectors import Target, parse_target, pressable_scopes


def _scope(request: HttpRequest) -> str:
    """The pressed button's scope; "other" is the one chosen in the menu's list."""
    scope = request.POST.get("scope", "")
    return request.POST.get("other", "") if scope == "other" else scope


def _target(request: HttpRequest) -> Target:
    """The scope from the form, 404 for an agent or team the person cannot see."""
    try:
        target = parse_target(_scope(request))
    except ValidationError:
        raise Http404("No such scope.") from None
    visible = agents_with_perm(user=request.user)
    if target.agent is not None and not visible.filter(pk=target.agent.pk).exists():
        raise Http404("No such scope.")
    if target.team is not None and not (
        visible.filter(team=target.team).exists()
        or target.team.members.filter(pk=request.user.pk).exists()
    ):
        raise Http404("No such scope.")
    if not can_press(request.user, target):
        raise PermissionDenied("You may not press this kill switch.")
    return target


def _back(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        return redirect(next_url)
    return redirect("home")


def _press(request: HttpRequest, service: Any, done: str) -> HttpResponse:
    target = _target(request)
    try:
        service(
            actor=Actor.for_user(request.user),
            target=target,
            reason=request.POST.get("reason", ""),
            user=request.user,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.warning(request, done.format(label=target.display_name))
    return _back(request)


@login_required
@require_POST
def engage(request: HttpRequest) -> HttpResponse:
    if request.POST.get("scope") == "other" and not request.POST.get("other"):
        messages.error(request, "Choose the agent or team to stop.")
        return _back(request)
    done = "Kill switch for {label} engaged: halted from the next decision on."
    return _press(request, services.killswitch_engage, done)


@login_required
@require_POST
def release(request: HttpRequest) -> HttpResponse:
    return _press(request, services.killswitch_release, "Kill switch for {label} released.")


@login_required
@require_GET
def scopes(request: HttpRequest) -> HttpResponse:
    """The menu's list of every scope the person may press, fetched when it opens."""
    context = {"scopes": pressable_scopes(user=request.user)}
    return render(request, "killswitch/_scope_options.html", context)
