"""Alerts: the list, one alert with its evidence, and acknowledging or resolving it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from oversight.agents.selectors import agents_with_perm
from oversight.monitoring import selectors
from oversight.monitoring.constants import AlertStatus
from oversight.monitoring.models import Alert
from oversight.monitoring.services import (
    alert_acknowledge,
    alert_resolve,
    user_can_act_on_alerts,
)

PAGE_SIZE = 100
STATUS_CHOICES = [("unresolved", "Unresolved"), *AlertStatus.choices, ("", "All")]


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "unresolved")
    if status not in selectors.STATUS_FILTERS:
        status = "unresolved"
    filters = selectors.AlertFilters(agent=request.GET.get("agent", "").strip(), status=status)
    alerts = selectors.alert_list(user=request.user, filters=filters)
    context = {
        "alerts": alerts[:PAGE_SIZE],
        "total": alerts.count(),
        "filters": filters,
        "status_choices": STATUS_CHOICES,
        "agent_choices": agents_with_perm(user=request.user)
        .filter(alerts__isnull=False)
        .distinct()
        .order_by("name")
        .values_list("slug", "name"),
    }
    template = "monitoring/_alert_table.html" if request.htmx else "monitoring/list.html"
    return render(request, template, context)


def _detail_context(request: HttpRequest, alert: Alert, **extra: Any) -> dict[str, Any]:
    return {
        "alert": alert,
        "agent": alert.agent,
        "can_act": user_can_act_on_alerts(request.user, alert.agent),
        **extra,
    }


@login_required
@require_GET
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = selectors.alert_get(user=request.user, pk=pk)
    if request.htmx:  # the status box re-reading itself after a change (live)
        return render(request, "monitoring/_alert_status.html", _detail_context(request, alert))
    numbers = {
        key.replace("_", " "): ", ".join(map(str, value)) if isinstance(value, list) else value
        for key, value in alert.evidence.items()
        if key not in ("actions", "response")
    }
    actions = [
        {**a, "at": dt.datetime.fromisoformat(a["at"])} for a in alert.evidence.get("actions", [])
    ]
    minutes = selectors.alert_minutes(alert=alert)
    context = _detail_context(request, alert, numbers=numbers, actions=actions, minutes=minutes)
    return render(request, "monitoring/alert.html", context)


def _act(request: HttpRequest, pk: int, service: Callable[..., Alert]) -> HttpResponse:
    """Acknowledge or resolve; htmx swaps the alert's status box in place."""
    alert = selectors.alert_get(user=request.user, pk=pk)  # 404 if its agent is not visible
    message, status = "", 200
    try:
        alert = service(user=request.user, alert_id=alert.pk, now=timezone.now())
    except PermissionDenied as exc:
        message, status = str(exc), 403
    except ValidationError as exc:
        message, status = " ".join(exc.messages), 409
        alert.refresh_from_db()
    if not request.htmx:
        if message:
            messages.error(request, message)
        return redirect("monitoring:alert", pk=alert.pk)
    context = _detail_context(request, alert, message=message, ok=status == 200)
    return render(request, "monitoring/_alert_status.html", context, status=status)


@login_required
@require_POST
def alert_acknowledge_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, alert_acknowledge)


@login_required
@require_POST
def alert_resolve_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, alert_resolve)
