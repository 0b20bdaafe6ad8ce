"""Accepting a changed MCP tool definition in the browser (agents/tool_pins.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from oversight.agents.access import get_agent_for_user
from oversight.agents.constants import CHANGE, HISTORY_CHANGED
from oversight.agents.models import ToolPin
from oversight.agents.selectors import tool_pin_rows
from oversight.agents.tool_pins import tool_pin_accept
from oversight.audit.actors import Actor


@login_required
@require_POST
def tool_pin_accept_view(request: HttpRequest, slug: str, pin_id: int) -> HttpResponse:
    """The owner accepts the definition she was shown (its hash is in the form): calls to
    the tool are no longer held for the change. With htmx the section is answered, saying
    what was done where the owner is looking; without, the agent's page."""
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    pin = get_object_or_404(ToolPin, pk=pin_id, agent=agent)
    try:
        _, cancelled = tool_pin_accept(
            actor=Actor.for_user(request.user),
            pin=pin,
            changed_hash=request.POST.get("changed_hash", ""),
            user=request.user,
        )
    except ValidationError as exc:
        message, ok = " ".join(exc.messages), False
    else:
        also = f"; {cancelled} call{pluralize(cancelled)} held only for the change cancelled"
        message = (
            f"Accepted the new definition of {pin.server}/{pin.tool}{also if cancelled else ''}."
        )
        ok = True
    if request.htmx:  # the section is answered in place, its message in it
        agent.refresh_from_db(fields=["changed_tools"])  # and the page's notice, again
        context = {"agent": agent, "tool_pins": tool_pin_rows(agent=agent), "can_change": True}
        context |= {"tools_message": message, "tools_ok": ok, "oob": True}
        section = render_to_string("agents/_tools.html", context, request=request)
        notice = render_to_string("agents/_tools_notice.html", context, request=request)
        response = HttpResponse(section + notice, status=200 if ok else 409)
        if ok:
            trigger_client_event(response, HISTORY_CHANGED)
        return response
    (messages.success if ok else messages.error)(request, message)
    return redirect(reverse("agents:detail", args=[agent.slug]) + "#agent-tools")
