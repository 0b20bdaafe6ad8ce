"""Reads of the agent registry, always for a given user and filtered in the database."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import Lower, RowNumber
from django.http import Http404

from oversight.accounts import roles
from oversight.agents.constants import APPROVE, VIEW
from oversight.agents.models import (
    Agent,
    AgentGroupObjectPermission,
    AgentUserObjectPermission,
    ToolPin,
)
from oversight.gateway.constants import ActionStatus
from oversight.notifications.constants import Kind

WAITING_SHOWN = 5  # a changed tool's waiting calls listed on the agent's page


def agents_with_perm(*, user: Any, perm: str = VIEW) -> QuerySet[Agent]:
    """Agents on which the user holds ``perm``: two subqueries, no per-object checks."""
    if not getattr(user, "is_active", False):
        return Agent.objects.none()
    if roles.is_admin(user):
        return Agent.objects.all()
    direct = AgentUserObjectPermission.objects.filter(user=user, permission__codename=perm).values(
        "content_object_id"
    )
    via_group = AgentGroupObjectPermission.objects.filter(
        group__user=user, permission__codename=perm
    ).values("content_object_id")
    return Agent.objects.filter(Q(pk__in=direct) | Q(pk__in=via_group))


def agent_owner_choices(*, user: Any) -> list[str]:
    """Usernames owning at least one agent the user can see (for the list filter)."""
    return list(
        agents_with_perm(user=user)
        .order_by("owner__username")
        .values_list("owner__username", flat=True)
        .distinct()
    )


def agent_team_choices(*, user: Any) -> list[tuple[str, str]]:
    """(slug, name) of teams with at least one agent the user can see."""
    return list(
        agents_with_perm(user=user)
        .order_by("team__name")
        .values_list("team__slug", "team__name")
        .distinct()
    )


@dataclass(frozen=True)
class AgentFilters:
    """The registry's filters; the same definition serves the HTML list and the API."""

    q: str = ""
    team: str = ""
    owner: str = ""
    status: str = ""


def agent_list(*, user: Any, filters: AgentFilters | None = None) -> QuerySet[Agent]:
    agents = agents_with_perm(user=user).select_related("owner", "team")
    f = filters or AgentFilters()
    if f.q:
        agents = agents.filter(
            Q(name__icontains=f.q) | Q(slug__icontains=f.q) | Q(purpose__icontains=f.q)
        )
    if f.team:
        agents = agents.filter(team__slug=f.team)
    if f.owner:
        agents = agents.filter(owner__username=f.owner)
    if f.status:
        agents = agents.filter(status=f.status)
    return agents.order_by(Lower("name"))


def agent_get(*, user: Any, slug: str) -> Agent:
    """The agent if the user may view it; 404 otherwise, so nothing leaks."""
    agent = agents_with_perm(user=user).select_related("owner", "team").filter(slug=slug).first()
    if agent is None:
        raise Http404("No such agent.")
    return agent


@dataclass(frozen=True)
class AccessEntry:
    user: Any
    level: str  # "owner", "reviewer" or "viewer"


def retirement_reason(*, agent: Agent) -> str:
    """Why a retired agent was retired, as its retirement recorded it ("" if not retired)."""
    from oversight.audit.models import AuditEvent  # audit -> agents
    from oversight.audit.verbs import AGENT_RETIRED

    if agent.retired_at is None:
        return ""
    event = (
        AuditEvent.objects.filter(agent_id=agent.pk, verb=AGENT_RETIRED)
        .order_by("-seq")
        .values_list("after", flat=True)
        .first()
    )
    # The page ends the sentence itself.
    return str((event or {}).get("reason") or "").rstrip(". ")


def agent_access_list(*, agent: Agent) -> list[AccessEntry]:
    """People with access granted on this agent directly, owner first. Teams are shown apart."""
    rows = AgentUserObjectPermission.objects.filter(content_object=agent).values_list(
        "user", "permission__codename"
    )
    perms_by_user: dict[int, set[str]] = {}
    for user_id, codename in rows:
        perms_by_user.setdefault(user_id, set()).add(codename)
    users = get_user_model().objects.in_bulk(list(perms_by_user))
    entries = [AccessEntry(agent.owner, "owner")]
    granted = sorted((users[pk] for pk in perms_by_user if pk != agent.owner_id), key=str)
    for user in granted:
        level = "reviewer" if APPROVE in perms_by_user[user.pk] else "viewer"
        entries.append(AccessEntry(user, level))
    return entries


def tool_pin_rows(*, agent: Agent) -> list[dict[str, Any]]:
    """The agent's pinned MCP tools, each with its pinned and changed definition as
    indented JSON lines, those that differ marked, and for a changed one the calls to it
    that await a decision, the first WAITING_SHOWN of them (for the agent's page; the
    caller checked the agent may be viewed)."""
    pins = list(ToolPin.objects.filter(agent=agent).select_related("accepted_by"))
    waiting = _waiting_calls(agent, [pin.action for pin in pins if pin.changed])
    rows = []
    for pin in pins:
        pinned = json.dumps(pin.definition, indent=2, sort_keys=True).splitlines()
        changed = (
            json.dumps(pin.changed_definition, indent=2, sort_keys=True).splitlines()
            if pin.changed
            else []
        )
        old_lines, new_lines = _marked_lines(pinned, changed)
        row = {"pin": pin, "pinned": old_lines, "changed": new_lines}
        if pin.changed:  # what accepting it is about: the calls waiting meanwhile
            shown = waiting.get(pin.action, [])
            row |= {"waiting": shown, "waiting_count": shown[0].waiting if shown else 0}
        rows.append(row)
    return rows


@dataclass(frozen=True)
class ToolChangeNow:
    """What became of a change of a tool's definition that no longer waits for an owner:
    ``accepted`` (by whom, when), ``changed_again`` (a newer definition waits) or
    ``superseded`` (the definition pinned now is another: back to the old one, or a
    later change accepted)."""

    state: str
    by: Any = None
    at: Any = None


def tool_change_event(pin_id: int, changed_hash: str) -> str:
    """The event key of the notice to a tool's owners of one change of its definition
    (agents/tool_pins.py): one notice per change. `tool_change_named` reads it back."""
    return f"{Kind.TOOL_CHANGED}:{pin_id}:{changed_hash}"


def tool_change_named(event: str) -> tuple[int, str] | None:
    """(pin id, changed definition's hash) of a `tool_change_event` key, else None."""
    kind, _, rest = event.partition(":")
    pin, _, changed_hash = rest.partition(":")
    if kind != Kind.TOOL_CHANGED or not pin.isdigit() or not changed_hash:
        return None
    return int(pin), changed_hash


def tool_changes_now(*, changes: list[tuple[int, str]]) -> dict[tuple[int, str], ToolChangeNow]:
    """For changes named by (pin id, hash of the changed definition), those that no longer
    wait, with what became of them; a change still waiting (or a pin gone) is left out.
    One query, whatever the number of changes."""
    pins = ToolPin.objects.filter(pk__in={pk for pk, _ in changes}).select_related("accepted_by")
    by_pk = {pin.pk: pin for pin in pins}
    now: dict[tuple[int, str], ToolChangeNow] = {}
    for pk, changed_hash in changes:
        pin = by_pk.get(pk)
        if pin is None or pin.changed_hash == changed_hash:
            continue
        if pin.definition_hash == changed_hash:
            now[pk, changed_hash] = ToolChangeNow("accepted", pin.accepted_by, pin.accepted_at)
        else:
            now[pk, changed_hash] = ToolChangeNow("changed_again" if pin.changed else "superseded")
    return now


def _waiting_calls(agent: Agent, actions: list[str]) -> dict[str, list[Any]]:
    """The held calls of each of ``actions``, the first WAITING_SHOWN of each, oldest
    first, each annotated with how many of its action wait (``waiting``): one query."""
    if not actions:
        return {}
    held = agent.actions.filter(action__in=actions, status=ActionStatus.PENDING).annotate(
        rank=Window(RowNumber(), partition_by=F("action"), order_by=F("created_at").asc()),
        waiting=Window(Count("id"), partition_by=F("action")),
    )
    found: dict[str, list[Any]] = {}
    for call in held.filter(rank__lte=WAITING_SHOWN).order_by("action", "created_at"):
        found.setdefault(call.action, []).append(call)
    return found


def _marked_lines(old: list[str], new: list[str]) -> tuple[list[Any], list[Any]]:
    """Each side's lines as (text, differs): what an owner must read before accepting."""
    old_marked = [(line, True) for line in old]
    new_marked = [(line, True) for line in new]
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            old_marked[block.a + i] = (old[block.a + i], False)
            new_marked[block.b + i] = (new[block.b + i], False)
    if not new:  # nothing changed: the pinned definition reads plain
        old_marked = [(line, False) for line in old]
    return old_marked, new_marked
