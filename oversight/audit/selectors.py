"""Reads of the audit log, always for a given user, paged by keyset on seq."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from oversight.accounts import roles
from oversight.agents.models import Agent
from oversight.agents.selectors import agents_with_perm
from oversight.audit import verb_families, verbs
from oversight.audit.diff import FieldChange, field_changes
from oversight.audit.models import AuditEvent

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilters:
    agent: str = ""  # agent slug
    actor: str = ""  # actor label: a username, agent:<slug> or system:<name>
    verb: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def audit_events(*, user: Any, filters: AuditFilters | None = None) -> QuerySet[AuditEvent]:
    """Events the user may read, newest first.

    Admins read everything. Auditors read the events of agents they may view;
    events not about an agent (teams, settings) are for admins only.
    """
    if not roles.can_read_audit_log(user):
        return AuditEvent.objects.none()
    events = AuditEvent.objects.all()
    if not roles.is_admin(user):
        events = events.filter(agent_id__in=agents_with_perm(user=user).values("pk"))
    return audit_filter(events, filters or AuditFilters())


def audit_filter(events: QuerySet[AuditEvent], f: AuditFilters) -> QuerySet[AuditEvent]:
    """``events`` narrowed by the filters, newest first. Callers decide who reads what:
    ``audit_events`` for a person; management commands, run by operators, for all."""
    if f.agent:
        agent_ids = Agent.objects.filter(slug=f.agent).values("pk")
        events = events.filter(agent_id__in=agent_ids)
    if f.actor:
        events = events.filter(actor_label=f.actor)
    if f.verb:
        events = events.filter(verb=f.verb)
    if f.since:
        events = events.filter(created_at__gte=f.since)
    if f.until:
        events = events.filter(created_at__lt=f.until)
    return events.order_by("-seq")


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_before: int | None  # pass as ?before= to get the next (older) page


def audit_page(
    *, user: Any, filters: AuditFilters, before: int | None, size: int = PAGE_SIZE
) -> AuditPage:
    """Keyset pagination: ``seq < before`` walks the unique index, fast at any depth."""
    events = audit_events(user=user, filters=filters)
    if before is not None:
        events = events.filter(seq__lt=before)
    rows = list(events[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return AuditPage(events=rows, next_before=rows[-1].seq if has_more else None)


@dataclass(frozen=True)
class HistoryEntry:
    event: AuditEvent
    changes: list[FieldChange]


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    next_before: int | None  # pass as ?before= to get the next (older) page


def agent_history(
    *,
    user: Any,
    agent: Agent,
    show: str = verb_families.CHANGES,
    before: int | None = None,
    size: int = PAGE_SIZE,
) -> HistoryPage:
    """The agent's own story, newest first, one page at a time (keyset on seq).

    ``show`` is one of ``verb_families.HISTORY_CHOICES``: changes (everything but
    actions: they would bury the rest), one family of verbs, actions, or everything.
    Empty for a person who may not view the agent.
    """
    if not agents_with_perm(user=user).filter(pk=agent.pk).exists():
        return HistoryPage(entries=[], next_before=None)
    # A constant agent id, not a subquery, so the planner walks the agent's index.
    events = AuditEvent.objects.filter(agent_id=agent.pk)
    if show != verb_families.EVERYTHING:
        if show == verb_families.ACTIONS.key:
            events = events.filter(verb__in=verbs.ACTION_VERBS)
        else:
            # Spelled as the partial index's condition (models.AuditEvent), which it uses.
            events = events.exclude(verb__in=verbs.ACTION_VERBS)
            if show != verb_families.CHANGES:
                events = events.filter(verb__in=verb_families.FAMILIES[show].verbs)
    if before is not None:
        events = events.filter(seq__lt=before)
    rows = list(events.order_by("-seq")[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return HistoryPage(
        entries=[HistoryEntry(event, field_changes(event.before, event.after)) for event in rows],
        next_before=rows[-1].seq if has_more else None,
    )
