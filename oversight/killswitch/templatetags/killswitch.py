"""``{% killswitch_menu %}``: the top bar's kill switch, on every page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

from oversight.accounts import roles
from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.killswitch.models import KillSwitch
from oversight.killswitch.selectors import menu_offers
from oversight.rewind.links import rewind_plan_url

register = template.Library()

REWIND_BEFORE_STOP = dt.timedelta(minutes=30)


def _of_type(value: Any, kind: type) -> Any:
    return value if isinstance(value, kind) else None


@register.inclusion_tag("killswitch/_menu.html", takes_context=True)
def killswitch_menu(context: template.Context) -> dict[str, Any]:
    """The scopes of the page first: a page about an agent (its page, policy,
    re-certification, an action or alert of it) offers that agent and its team, a team's
    page the team; everything for admins; then engaged switches to release. People who
    may stop some agent also choose any other from a list. Nothing for the others."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    offers = menu_offers(
        user=user,
        engaged=list(context.get("engaged_switches") or ()),
        agent=_of_type(context.get("agent"), Agent),
        team=_of_type(context.get("team"), Team),
    )
    may_choose = roles.has_role(user, roles.OWNER)  # admins too
    return {
        "show": bool(offers) or may_choose,
        "offers": offers,
        "may_choose": may_choose,
        "request": request,
        "csrf_token": context.get("csrf_token"),
    }


@register.simple_tag
def rewind_before_stop_url(switch: KillSwitch) -> str:
    """The rewind plan of a stopped agent's half hour before its switch was engaged: a
    window fixed in time, so the link means the same later, and without the actions the
    switch halted since (the plan page changes it)."""
    stopped = switch.changed_at or timezone.now()
    return rewind_plan_url(switch.agent.slug, since=stopped - REWIND_BEFORE_STOP, until=stopped)
