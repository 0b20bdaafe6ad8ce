from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from oversight.accounts import roles
from oversight.accounts.roles import RoleRequired
from oversight.agents import services
from oversight.agents.access import get_agent_for_user
from oversight.agents.constants import CHANGE, HISTORY_CHANGED, UNDO_TOKEN_NAME
from oversight.agents.forms import AccessGrantForm, AgentFilterForm, AgentForm, AgentHistoryForm
from oversight.agents.models import Agent
from oversight.agents.permissions import user_has_agent_perm
from oversight.agents.selectors import (
    agent_access_list,
    agent_list,
    retirement_reason,
    tool_pin_rows,
)
from oversight.agents.token_views import TokenForm
from oversight.approvals.eligibility import unsatisfiable_rules
from oversight.approvals.selectors import recent_actions
from oversight.audit.actors import Actor
from oversight.audit.selectors import agent_history
from oversight.lib.htmx import render_page_or_fragment, wants_fragment
from oversight.lib.paging import page_number, page_of
from oversight.releases.selectors import release_saved_words

LIST_PAGE_SIZE = 100  # agents a page of the registry shows; filters find the others


@login_required
@require_GET
def agent_list_view(request: HttpRequest) -> HttpResponse:
    form = AgentFilterForm(request.GET or None, user=request.user)
    agents = agent_list(user=request.user, filters=form.filters())
    page = page_of(agents, number=page_number(request.GET.get("page")), size=LIST_PAGE_SIZE)
    context = {"form": form, "agents": page.items, "page": page}
    return render_page_or_fragment(request, "agents/list.html", "agents/_table.html", context)


@login_required
@require_GET
def agent_detail(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug)
    can_change = user_has_agent_perm(request.user, CHANGE, agent)
    context = {
        "agent": agent,
        **_history_context(request, agent),
        "can_change": can_change,
        "access": agent_access_list(agent=agent),
        "unsatisfiable": unsatisfiable_rules(agent=agent),
        "access_form": AccessGrantForm(agent=agent) if can_change else None,
        "tokens": agent.tokens.all() if can_change else None,
        "actions": recent_actions(user=request.user, agent_id=agent.pk),
        "agent_id_str": str(agent.pk),
        "tool_pins": tool_pin_rows(agent=agent),
        "retired_why": retirement_reason(agent=agent),
        "token_form": TokenForm(agent=agent) if can_change else None,
        "undo_token_name": UNDO_TOKEN_NAME,
    }
    return render(request, "agents/detail.html", context)


def _history_context(request: HttpRequest, agent: Agent) -> dict[str, Any]:
    form = AgentHistoryForm(request.GET or None)
    query = form.query()
    return {
        "history_form": form,
        "history": agent_history(user=request.user, agent=agent, **query),
        "history_show": query["show"],
        "history_before": query["before"],
    }


@login_required
@require_GET
def agent_history_view(request: HttpRequest, slug: str) -> HttpResponse:
    """The History's filter and its Older link: the History alone, for an htmx swap, with
    the agent page's address (which shows the same) pushed to the browser's history.
    Anything else goes to that page."""
    agent = get_agent_for_user(request, slug)
    page_url = reverse("agents:detail", args=[agent.slug])
    if request.GET:
        page_url += f"?{request.GET.urlencode()}"
    if wants_fragment(request):
        context = {"agent": agent, **_history_context(request, agent)}
        response = render(request, "agents/_history.html", context)
        if request.htmx.trigger != "agent-history":  # not the section re-reading itself
            response["HX-Push-Url"] = page_url
    else:
        response = redirect(page_url)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_http_methods(["GET", "POST"])
def agent_create(request: HttpRequest) -> HttpResponse:
    if not roles.can_create_agents(request.user):
        raise RoleRequired("Only admins and owners register agents.")
    form = AgentForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            agent = services.agent_create(actor=Actor.for_user(request.user), **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Registered {agent.name}.")
            return redirect("agents:detail", slug=agent.slug)
    return render(request, "agents/form.html", {"form": form, "agent": None})


@login_required
@require_http_methods(["GET", "POST"])
def agent_edit(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    form = AgentForm(request.POST or None, instance=agent, user=request.user)
    if request.method == "POST" and form.is_valid():
        changes, shown = form.edits()
        working_before = agent.working_release_id
        try:
            # The form wrote its values onto `agent`; the service reloads and locks the row.
            agent = services.agent_update(
                actor=Actor.for_user(request.user), agent=agent, expected=shown, **changes
            )
        except services.StaleEdit as exc:
            form.add_error(None, exc)
            form.show_current(exc.current)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            made = release_saved_words(agent_id=agent.pk, working_before=working_before)
            messages.success(request, f"Saved {agent.name}" + (f": {made}." if made else "."))
            return redirect("agents:detail", slug=agent.slug)
    return render(request, "agents/form.html", {"form": form, "agent": agent})


def _render_access(
    request: HttpRequest, agent: Agent, form: AccessGrantForm | None = None, error: str = ""
) -> HttpResponse:
    context = {
        "access_error": error,
        "agent": agent,
        "access": agent_access_list(agent=agent),
        "unsatisfiable": unsatisfiable_rules(agent=agent),
        "access_form": form or AccessGrantForm(agent=agent),
        "can_change": True,
    }
    return render(request, "agents/_access.html", context)


@login_required
@require_POST
def agent_access_grant_view(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    form = AccessGrantForm(request.POST, agent=agent)
    note = ""
    if form.is_valid():
        person, level = form.cleaned_data["user"], form.cleaned_data["level"]
        if not services.agent_access_grant(
            actor=Actor.for_user(request.user), agent=agent, user=person, level=level
        ):
            note = f"{person.get_username()} has {level} access already; nothing changed."
        form = None
    if request.htmx:
        response = _render_access(request, agent, form, error=note)
        if form is None and not note:
            trigger_client_event(response, HISTORY_CHANGED)
        return response
    if note:
        messages.info(request, note)
    elif form is not None:  # without htmx: what was wrong, on the page it is shown on
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Access not given: {error}")
    else:
        messages.success(request, "Access given.")
    return redirect("agents:detail", slug=agent.slug)


@login_required
@require_POST
def agent_access_revoke_view(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    user = get_object_or_404(get_user_model(), pk=user_id)
    error = ""
    try:
        services.agent_access_revoke(actor=Actor.for_user(request.user), agent=agent, user=user)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        response = _render_access(request, agent, error=error)
        if not error:
            trigger_client_event(response, HISTORY_CHANGED)
        return response
    if error:
        messages.error(request, error)
    return redirect("agents:detail", slug=agent.slug)
