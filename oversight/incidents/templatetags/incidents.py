"""``{% open_incident agent %}``: the "Open an incident" button, for those who may."""

from __future__ import annotations

from typing import Any

from django import template

from oversight.incidents.selectors import agent_incident_allowed, incident_list

register = template.Library()


@register.inclusion_tag("incidents/_open_button.html", takes_context=True)
def open_incident(
    context: dict[str, Any], agent: Any, action: Any = None, alert: Any = None
) -> dict[str, Any]:
    request = context["request"]
    show = agent_incident_allowed(request.user, agent)
    return {
        "show": show,
        # One still open for the agent: linked, and the button says "another".
        "open_one": incident_list(user=request.user, agent=agent.slug).first() if show else None,
        "agent": agent,
        "action": action,
        "alert": alert,
        "csrf_token": context.get("csrf_token"),
        "next": request.get_full_path(),
    }
