"""How values read on every page: ``{% load display %}``.

One place for the words and pills the pages share, so that a state reads the same on
every page (oversight/lib/humanize.py holds the plain-text functions)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeData, SafeString, mark_safe

from oversight.agents.constants import AgentStatus
from oversight.gateway.constants import ActionStatus
from oversight.killswitch.models import KillSwitch, Scope
from oversight.lib import humanize
from oversight.rewind.words import undo_words as _undo_words

if TYPE_CHECKING:
    from oversight.notifications.since import Since

register = template.Library()


@register.filter
def duration(seconds: int | float | None) -> str:
    """``{{ rule.expires_in_seconds|duration }}``: "15 minutes"."""
    return humanize.duration(seconds)


@register.filter
def expires_in(when: datetime | None) -> str:
    """``{{ action.expires_at|expires_in }}``: "expires in 14m 58s", as the countdown
    ticks on."""
    return humanize.expires_in(when)


# A stored field's name as people read it (a release's content, side by side).
_FIELD_WORDS = {
    "model_name": "model",
    "expires_at": "expires",
    "expires_in_seconds": "hold time",  # shown as a duration ("15 minutes")
    "approver_people": "named approvers",
}


@register.filter
def field_words(name: str) -> str:
    """``{{ name|field_words }}``: "model_settings" reads "model settings"."""
    return _FIELD_WORDS.get(name, name.replace("_", " "))


@register.filter
def ago(when: datetime | None) -> str:
    """``{{ item.created_at|ago }}``: "just now", "3 hours, 4 minutes ago"."""
    return humanize.ago(when)


# A word longer than this (a name, a resource, a condition pasted without spaces) gets
# places to break: after its separators, and every LONG_WORD characters between them.
LONG_WORD = 24
_WORDS = re.compile(r"(\s+)")
_SEGMENTS = re.compile(r"[^/.:_\-@,;=&?]*[/.:_\-@,;=&?]?")


def _breakable(word: str) -> str:
    chunks = []
    for segment in _SEGMENTS.findall(word):
        chunks += [segment[i : i + LONG_WORD] for i in range(0, len(segment), LONG_WORD)]
    return "<wbr>".join(escape(chunk) for chunk in chunks if chunk)


@register.filter
def soft_breaks(value: Any) -> str:
    """``<td>{{ rule.name|soft_breaks }}</td>``: the value, escaped, where a word longer
    than LONG_WORD characters may wrap (``<wbr>`` after its separators, and within long
    runs), so a table cell holds it instead of widening the page. Shorter words are never
    broken: cells break words only when they overflow (``overflow-wrap: break-word``), so
    a table never squeezes a column below its words. Copied text is unchanged. Markup
    made safe already is left as it is."""
    if isinstance(value, SafeData):
        return value
    words = _WORDS.split(str(value))
    return mark_safe(  # noqa: S308 (every piece is escaped)
        "".join(_breakable(w) if len(w) > LONG_WORD else escape(w) for w in words)
    )


_CODE_SPAN = re.compile(r"`([^`]+)`")


@register.filter
def code_spans(value: Any) -> str:
    """``{{ reason.detail|code_spans }}``: the text, escaped, with what the words mark as
    code between backticks (a rule's condition) set as code: "condition `params.amount >
    100` was true" reads without the backticks."""
    if isinstance(value, SafeData):
        return value
    text = escape(str(value))
    return mark_safe(_CODE_SPAN.sub(r"<code>\1</code>", text))  # noqa: S308 (escaped first)


@register.filter
def person(user: Any, me: Any = None) -> str:
    """``{{ vote.voter|person:request.user }}``: "you" for the page's own person, else
    the full name, else the username."""
    if me is not None and getattr(me, "pk", None) == user.pk:
        return "you"
    return humanize.person_name(user)


@register.filter
def involves(since: Since, user: Any) -> bool:
    """``{% if item.now|involves:request.user %}``: the page's person did it."""
    return since.involves(user)


@register.filter
def plain_number(value: Any) -> str:
    """``{{ limit.max_sum|plain_number }}``: "20000", not "20000.0000" or "2E+4"."""
    return humanize.plain_number(value)


@register.filter
def grouped_number(value: Any) -> str:
    """``{{ amount.sum|grouped_number }}``: "23,548.5", a sum read rather than typed back."""
    return humanize.plain_number(value, grouped=True)


@register.filter
def params_parts(value: Any) -> list[str]:
    """``{% for part in action.params|params_parts %}``: "amount: 900", "charges: [...]"."""
    return humanize.params_parts(value)


@register.filter
def params_cut(value: Any) -> bool:
    """``{% if action.params|params_cut %}``: the row cannot show them all."""
    return humanize.params_cut(value)


@register.filter
def as_json(value: Any) -> str:
    """``<pre>{{ action.after|as_json }}</pre>``: indented JSON, never Python's repr."""
    return humanize.pretty_json(value)


@register.filter
def status_words(status: str) -> str:
    """``{{ event.after.status|status_words }}``: an action's status in the words of
    ActionStatus ("pending" reads "Waiting for approval")."""
    try:
        return str(ActionStatus(status).label)
    except ValueError:
        return status


@register.filter
def undo_words(code: str) -> str:
    """``{{ item.outcome|undo_words }}``: a rewind's reason code or an undo's outcome in
    words ("not_run:denied" reads "never succeeded (denied)")."""
    return _undo_words(code)


@register.filter
def action_status(status: str) -> SafeString:
    """``{{ action.status|action_status }}``: the status as a pill, in the same words (a
    person's "deny" and the policy's read alike everywhere)."""
    return format_html('<span class="pill status-{}">{}</span>', status, status_words(status))


def halting_switch(agent: Any, switches: Iterable[KillSwitch]) -> KillSwitch | None:
    """The engaged switch among ``switches`` that covers ``agent``, the narrowest first."""
    found: dict[str, KillSwitch] = {}
    for switch in switches:
        if not switch.engaged:
            continue
        if (
            (switch.scope == Scope.AGENT and switch.agent_id == agent.pk)
            or (switch.scope == Scope.TEAM and switch.team_id == agent.team_id)
            or switch.scope == Scope.GLOBAL
        ):
            found.setdefault(switch.scope, switch)
    return found.get(Scope.AGENT) or found.get(Scope.TEAM) or found.get(Scope.GLOBAL)


def _switch_label(switch: KillSwitch) -> str:
    if switch.scope == Scope.AGENT:
        return "this agent"
    if switch.scope == Scope.TEAM:
        return f"team {switch.team.name}" if switch.team else "its team"
    return "everything"


@register.simple_tag(takes_context=True)
def agent_state(context: template.Context, agent: Any) -> SafeString:
    """``{% agent_state agent %}``: the agent's state as a pill. A kill switch over it
    (the agent's, its team's or the global one) shows as "Halted": its status alone
    would still say "Active"; so would a hold of every action for a person after a
    critical alert ("Every action held"). Uses the page's engaged switches (the context processor
    oversight.killswitch.context_processors.killswitches), so a list costs no query."""
    if agent.status != AgentStatus.RETIRED:
        switch = halting_switch(agent, context.get("engaged_switches") or ())
        if switch is not None:
            return format_html(
                '<span class="pill status-halted" title="{}">Halted by a kill switch</span>',
                f"Kill switch for {_switch_label(switch)}: {switch.reason}",
            )
        if agent.status == AgentStatus.ACTIVE and agent.hold_all:
            # Monitoring holds every action for a person: "Active" alone would hide it.
            return format_html(
                '<span class="pill status-paused" title="{}">Every action held</span>',
                agent.hold_all_reason,
            )
    return format_html(
        '<span class="pill status-{}">{}</span>', agent.status, agent.get_status_display()
    )
