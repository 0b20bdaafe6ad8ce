"""Agent tokens in the browser: issue (shown once), rotate, revoke."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from oversight.agents import services
from oversight.agents.access import get_agent_for_user
from oversight.agents.constants import CHANGE, HISTORY_CHANGED, UNDO_TOKEN_NAME, Environment
from oversight.agents.models import Agent, AgentToken
from oversight.audit.actors import Actor


class TokenForm(forms.Form):
    """A new token: for one of the environments the agent is registered for."""

    environment = forms.ChoiceField(choices=Environment.choices)
    name = forms.CharField(max_length=100, required=False, help_text="To tell tokens apart.")

    def __init__(self, *args: Any, agent: Agent, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"environment": agent.environments[0]})
        super().__init__(*args, **kwargs)
        # Offered: the agent's environments (another is refused by token_create, saying so).
        names = dict(Environment.choices)
        self.fields["environment"].widget.choices = [
            (e, names.get(e, e)) for e in agent.environments
        ]

    def error_text(self) -> str:
        return " ".join(
            f"{self[field].label}: {' '.join(errors)}" for field, errors in self.errors.items()
        )


def _panel(request: HttpRequest, agent: Agent, *, raw: str = "", error: str = "") -> HttpResponse:
    context = {
        "agent": agent,
        "tokens": agent.tokens.all(),
        "token_form": TokenForm(agent=agent),
        "new_token": raw,
        "token_error": error,
        "undo_token_name": UNDO_TOKEN_NAME,
    }
    if error and not request.htmx:
        messages.error(request, error)  # the agent's page shows it
    if request.htmx or raw:
        # A new token is shown in this response only; never cache it.
        response = render(
            request, "agents/_tokens.html" if request.htmx else "agents/token_issued.html", context
        )
        add_never_cache_headers(response)
        if request.htmx and not error:
            trigger_client_event(response, HISTORY_CHANGED)
        return response
    return redirect("agents:detail", slug=agent.slug)


@login_required
@require_POST
def token_create_view(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    form = TokenForm(request.POST, agent=agent)
    if not form.is_valid():
        return _panel(request, agent, error=form.error_text())
    try:
        _token, raw = services.token_create(
            actor=Actor.for_user(request.user),
            agent=agent,
            environment=form.cleaned_data["environment"],
            name=form.cleaned_data["name"],
            created_by=request.user,
        )
    except ValidationError as exc:
        return _panel(request, agent, error=" ".join(exc.messages))
    return _panel(request, agent, raw=raw)


@login_required
@require_POST
def token_rotate_view(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    token = get_object_or_404(AgentToken, pk=token_id, agent=agent)
    try:
        _new, raw = services.token_rotate(
            actor=Actor.for_user(request.user), token=token, created_by=request.user
        )
    except ValidationError as exc:
        return _panel(request, agent, error=" ".join(exc.messages))
    return _panel(request, agent, raw=raw)


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    token = get_object_or_404(AgentToken, pk=token_id, agent=agent)
    services.token_revoke(actor=Actor.for_user(request.user), token=token)
    return _panel(request, agent)
