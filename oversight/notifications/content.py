"""What notifications say.

Payloads (the machine-readable event) are built once, when a notification is created,
and stored on it; emails and webhook bodies are rendered from the stored payload at
each attempt, so every retry says the same thing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.gateway.models import Action, deciding_reasons
from oversight.killswitch.models import KillSwitch, Scope
from oversight.notifications.constants import (
    ACTION_URL_NAME,
    GENERAL_KINDS,
    MAX_AGENTS_LISTED,
    Kind,
)

# --- payloads ------------------------------------------------------------------------


def absolute_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def action_url(action: Action) -> str:
    """The page where the action is decided."""
    return absolute_url(reverse(ACTION_URL_NAME, args=[action.pk]))


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _team(team: Team) -> dict[str, Any]:
    return {"slug": team.slug, "name": team.name}


def _agent(agent: Agent) -> dict[str, Any]:
    return {
        "slug": agent.slug,
        "name": agent.name,
        "url": absolute_url(reverse("agents:detail", args=[agent.slug])),
    }


def action_held_payload(
    action: Action, *, decision_url: str = "", links: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """Params are left out on purpose: they may hold personal data, and webhooks often
    land in chat rooms. The link leads a reviewer to everything, behind a login.

    ``decision_url``: the one person's signed decision link (an email); ``links``: one
    per approver, ``{"user", "url"}`` (a chat message, where each follows their own).
    """
    payload = {
        "event": Kind.ACTION_HELD.value,
        "team": _team(action.agent.team),
        "agent": _agent(action.agent),
        "action": {
            "id": str(action.pk),
            "action": action.action,
            "resource": action.resource,
            "environment": action.environment,
            "reason": action.reason,
            "reasons": [
                {k: r.get(k) for k in ("kind", "name", "effect", "detail")}
                for r in action.reasons
                if isinstance(r, dict)
            ],
            # What holds it now (a changed tool an owner has accepted since holds it no
            # more): what the messages list.
            "held_by": [
                {k: r.get(k) for k in ("kind", "name", "effect", "detail")}
                for r in action.deciding_reasons
            ],
            "approvals_required": action.approvals_required,
            "created_at": _when(action.created_at),
            "expires_at": _when(action.expires_at),
            "url": action_url(action),
        },
    }
    if decision_url:
        payload["action"]["decision_url"] = decision_url
    if links is not None:
        payload["action"]["links"] = links
    return payload


def _switch_target(switch: KillSwitch) -> str:
    """By slug: the payload's ``target``, a key a receiver may match on."""
    if switch.scope == Scope.AGENT and switch.agent is not None:
        return f"agent {switch.agent.slug}"
    if switch.scope == Scope.TEAM and switch.team is not None:
        return f"team {switch.team.slug}"
    return "everything"


def _switch_name(switch: KillSwitch) -> str:
    """By name, as people read it (and as the kill-switch banner says it)."""
    if switch.scope == Scope.AGENT and switch.agent is not None:
        return f"agent {switch.agent.name}"
    if switch.scope == Scope.TEAM and switch.team is not None:
        return f"team {switch.team.name}"
    return "everything"


def killswitch_payload(
    switch: KillSwitch, *, engaged: bool, team: Team, agents: list[Agent]
) -> dict[str, Any]:
    """``agents``: those in the switch's scope that this message is about."""
    kind = Kind.KILLSWITCH_ENGAGED if engaged else Kind.KILLSWITCH_RELEASED
    return {
        "event": kind.value,
        "team": _team(team),
        "switch": {
            "id": switch.pk,
            "scope": switch.scope,
            "target": _switch_target(switch),
            "name": _switch_name(switch),
            "engaged": engaged,
            "reason": switch.reason,
            "changed_at": _when(switch.changed_at),
            "changed_by": switch.changed_by.get_username() if switch.changed_by else None,
        },
        "agents": [_agent(agent) for agent in agents[:MAX_AGENTS_LISTED]],
        "agents_total": len(agents),
    }


def killswitch_item(switch: KillSwitch, *, engaged: bool, agents: list[Agent]) -> dict[str, Any]:
    """An owner's inbox item about a press: ``agents``, those of theirs it covers."""
    verb = "engaged" if engaged else "released"
    names = ", ".join(a.name for a in agents[:MAX_AGENTS_LISTED])
    more = len(agents) - MAX_AGENTS_LISTED
    by = f" by {switch.changed_by.get_username()}" if switch.changed_by else ""
    effect = "stops" if engaged else "no longer stops"
    return {
        "title": f"Kill switch {verb} for {_switch_name(switch)}",
        "body": f"{verb.capitalize()}{by}: {switch.reason}\nIt {effect} your "
        f"{'agent' if len(agents) == 1 else 'agents'} {names}"
        + (f" and {more} more" if more > 0 else "")
        + ".",
        "link": reverse("agents:detail", args=[agents[0].slug])
        if len(agents) == 1
        else reverse("agents:list"),
        "agent": agents[0] if len(agents) == 1 else None,
    }


def general_payload(
    *, kind: str, team: Team, title: str, body: str, link: str, agent: Agent | None
) -> dict[str, Any]:
    """The kinds told through ``notify_people``: a title, a body and a link, as given."""
    return {
        "event": kind,
        "team": _team(team),
        "agent": _agent(agent) if agent is not None else None,
        "title": title,
        "body": body,
        "url": absolute_url(link) if link else None,
    }


def test_payload(team: Team, *, requested_by: str) -> dict[str, Any]:
    return {"event": Kind.TEST.value, "team": _team(team), "requested_by": requested_by}


# --- rendering -----------------------------------------------------------------------

# Email templates by kind. Test messages go to the webhook only.
_TEMPLATES = {
    Kind.ACTION_HELD.value: "action_held",
    Kind.KILLSWITCH_ENGAGED.value: "killswitch",
    Kind.KILLSWITCH_RELEASED.value: "killswitch",
    **{kind.value: "general" for kind in GENERAL_KINDS},
}


def _display_time(value: str | None) -> str:
    parsed = parse_datetime(value) if value else None
    if parsed is None:
        return "never"
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _context(payload: dict[str, Any]) -> dict[str, Any]:
    action = payload.get("action") or {}
    switch = payload.get("switch") or {}
    return {
        "p": payload,
        "expires": _display_time(action.get("expires_at")),
        "changed": _display_time(switch.get("changed_at")),
        "more_agents": payload.get("agents_total", 0) - len(payload.get("agents", [])),
        "held_by": _held_by(action),
    }


def _held_by(action: dict[str, Any]) -> list[dict[str, Any]]:
    """The reasons that hold a held action, as its payload says (one queued before the
    payload said so: worked out from all its reasons)."""
    if "held_by" in action:
        return list(action["held_by"])
    return deciding_reasons(action.get("reasons"))


def render_email(payload: dict[str, Any]) -> tuple[str, str]:
    """(subject, plain-text body)."""
    name = _TEMPLATES[payload["event"]]
    context = _context(payload)
    subject = render_to_string(f"notifications/email/{name}_subject.txt", context)
    # One line: a newline in a header is refused by Django (and would be an injection).
    subject = re.sub(r"\s+", " ", subject).strip()
    body = render_to_string(f"notifications/email/{name}.txt", context)
    return subject, body


def _slack_escape(text: Any) -> str:
    """Agent-supplied text must not become links or @channel mentions in Slack."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_message(payload: dict[str, Any]) -> tuple[str, list[str]]:
    """(one-line summary, mrkdwn lines)."""
    e = _slack_escape
    event = payload["event"]
    if event == Kind.ACTION_HELD.value:
        a, agent = payload["action"], payload["agent"]
        summary = f"Approval needed: {e(a['action'])} on {e(a['resource'])} by {e(agent['name'])}"
        lines = [
            f"*Approval needed* for *{e(agent['name'])}* ({e(payload['team']['name'])})",
            f"`{e(a['action'])}` on `{e(a['resource'])}` in {e(a['environment'])}",
        ]
        if a["reason"]:
            lines.append(f"Agent's reason: {e(a['reason'])}")
        lines += [f"• {e(r['name'])}: {e(r['detail'])}" for r in _held_by(a) if r.get("detail")]
        people = [f"<{link['url']}|{e(link['user'])}>" for link in a.get("links", [])]
        if people:
            lines.append("Decide with your own link: " + " · ".join(people))
        lines.append(f"Expires {_display_time(a['expires_at'])}. <{a['url']}|Review it>")
        return summary, lines
    if event in (Kind.KILLSWITCH_ENGAGED.value, Kind.KILLSWITCH_RELEASED.value):
        s = payload["switch"]
        verb = "engaged" if s["engaged"] else "released"
        summary = f"Kill switch {verb} for {e(s['name'])}"
        by = f" by {e(s['changed_by'])}" if s["changed_by"] else ""
        lines = [f"*Kill switch {verb}* for {e(s['name'])}{by}: {e(s['reason'])}"]
        names = [f"<{a['url']}|{e(a['name'])}>" for a in payload["agents"]]
        more = payload["agents_total"] - len(names)
        if names:
            lines.append("Agents: " + ", ".join(names) + (f" and {more} more" if more else ""))
        return summary, lines
    if event in GENERAL_KINDS:
        summary = e(payload["title"])
        lines = [f"*{e(payload['title'])}* ({e(payload['team']['name'])})"]
        if payload["body"]:
            lines.append(e(payload["body"]))
        if payload["url"]:
            lines.append(f"<{payload['url']}|Open it in Oversight>")
        return summary, lines
    team = payload["team"]["name"]
    summary = f"Test message from Oversight for {e(team)}"
    return summary, [f"*Test message* for {e(team)}, sent by {e(payload['requested_by'])}."]


def webhook_body(payload: dict[str, Any], *, notification_id: int, timestamp: int) -> bytes:
    """Slack-compatible ``text`` and ``blocks``, plus the event under ``oversight``.

    The timestamp is inside the signed body too, so a receiver can refuse replays.
    """
    summary, lines = _slack_message(payload)
    body = {
        "text": summary,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
        ],
        "oversight": {**payload, "notification_id": notification_id, "timestamp": timestamp},
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
