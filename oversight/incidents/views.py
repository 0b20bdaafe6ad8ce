"""Incidents in the browser: the list, one incident with its analysis, opening one by hand,
handling it (owner, status, notes), analysing again, and its exports."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from oversight.agents.access import AgentAccessDenied
from oversight.agents.selectors import agent_get
from oversight.audit.actors import Actor
from oversight.incidents import selectors, services
from oversight.incidents.charts import series_chart
from oversight.incidents.export import incident_document, incident_markdown
from oversight.incidents.forms import IncidentOpenForm, IncidentUpdateForm, NoteForm
from oversight.incidents.models import Incident, IncidentStatus

STATUS_CHOICES = [("unresolved", "Unresolved"), *IncidentStatus.choices, ("", "All")]


@login_required
@require_GET
def incident_list_view(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "unresolved")
    incidents = selectors.incident_list(
        user=request.user, status=status, agent=request.GET.get("agent", "").strip()
    )
    out_of_view = selectors.incident_list_out_of_view(user=request.user, status=status)
    context = {
        "incidents": incidents[:100],
        "out_of_view": out_of_view[:100],
        "status": status,
        "status_choices": STATUS_CHOICES,
    }
    return render(request, "incidents/list.html", context)


@login_required
@require_GET
def incident_of_switch_view(request: HttpRequest, switch_id: int) -> HttpResponse:
    """The kill-switch banner's "See the incident": the incident that switch opened, or
    the list when there is none the user may see."""
    incident = selectors.incident_of_switch(user=request.user, switch_id=switch_id)
    if incident is None:
        return redirect("incidents:list")
    return redirect("incidents:detail", pk=incident.pk)


def _context(request: HttpRequest, incident: Incident, **extra: Any) -> dict[str, Any]:
    report = incident.report or {}
    return {
        "incident": incident,
        "report": report,
        "chart": series_chart(report) if report else None,
        "can_handle": selectors.user_can_handle(request.user, incident),
        "update_form": IncidentUpdateForm(
            incident=incident, users=selectors.owner_choices(incident=incident)
        ),
        "note_form": NoteForm(),
        "notes": incident.notes.select_related("author"),
        "triggers": incident.triggers.all(),
        **extra,
    }


@login_required
@require_GET
def incident_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    incident = selectors.incident_get(user=request.user, pk=pk)
    template = "incidents/_analysis.html" if request.htmx else "incidents/detail.html"
    return render(request, template, _context(request, incident))


def _handled(request: HttpRequest, pk: int) -> Incident:
    incident = selectors.incident_get(user=request.user, pk=pk)
    if not selectors.user_can_handle(request.user, incident):
        raise AgentAccessDenied("Only the agent's owners and reviewers, and admins, handle it.")
    return incident


@login_required
@require_POST
def incident_update_view(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _handled(request, pk)
    form = IncidentUpdateForm(
        request.POST, incident=incident, users=selectors.owner_choices(incident=incident)
    )
    if form.is_valid():
        services.incident_update(
            actor=Actor.for_user(request.user),
            incident=incident,
            status=form.cleaned_data["status"],
            owner=form.cleaned_data["owner"] or False,
        )
        messages.success(request, "Incident updated.")
    else:
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
    return redirect("incidents:detail", pk=pk)


@login_required
@require_POST
def incident_note_view(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _handled(request, pk)
    form = NoteForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError("; ".join(e for errs in form.errors.values() for e in errs))
        services.incident_note_add(
            actor=Actor.for_user(request.user),
            incident=incident,
            user=request.user,
            body=form.cleaned_data["body"],
        )
        messages.success(request, "Note added.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("incidents:detail", pk=pk)


@login_required
@require_POST
def incident_analyse_view(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _handled(request, pk)
    services.incident_reanalyse(incident=incident)
    return redirect("incidents:detail", pk=pk)


def _back(request: HttpRequest) -> HttpResponse:
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return redirect(back if back and safe else "incidents:list")


@login_required
@require_POST
def incident_open_view(request: HttpRequest) -> HttpResponse:
    """Open one by hand, from an agent, an action or an alert."""
    form = IncidentOpenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
        return _back(request)
    agent = agent_get(user=request.user, slug=form.cleaned_data["agent"])
    if not selectors.agent_incident_allowed(request.user, agent):
        raise AgentAccessDenied("Only the agent's owners and reviewers, and admins, open one.")
    try:
        trigger = selectors.incident_opened_from(
            user=request.user,
            agent=agent,
            title=form.cleaned_data["title"],
            action_id=form.cleaned_data["action"],
            alert_id=form.cleaned_data["alert"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _back(request)
    incident, _ = services.incident_open(
        actor=Actor.for_user(request.user), user=request.user, agent=agent, **trigger
    )
    return redirect("incidents:detail", pk=incident.pk)


@login_required
@require_GET
def incident_export_view(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    incident = selectors.incident_get(user=request.user, pk=pk)
    if fmt not in ("json", "md"):
        raise Http404("Export as .json or .md.")
    if fmt == "json":
        body = json.dumps(incident_document(incident), indent=2, ensure_ascii=False)
        response = HttpResponse(body, content_type="application/json")
    else:
        response = HttpResponse(incident_markdown(incident), content_type="text/markdown")
    response["Content-Disposition"] = f'attachment; filename="incident-{incident.pk}.{fmt}"'
    return response
