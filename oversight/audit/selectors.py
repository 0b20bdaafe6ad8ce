"""Reads of the audit log, always for a given user, paged by keyset on seq."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, Case, CharField, Q, QuerySet, Value, When
from django.db.models.functions import Cast

from oversight.accounts import roles
from oversight.agents.models import Agent
from oversight.agents.selectors import agents_with_perm
from oversight.audit import verb_families, verbs
from oversight.audit.diff import FieldChange, field_changes
from oversight.audit.models import AuditEvent
from oversight.incidents.selectors import incidents_visible
from oversight.killswitch.models import KillSwitch, Scope

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilters:
    agent: str = ""  # agent slug
    actor: str = ""  # actor label: a username, agent:<slug> or system:<name>
    verb: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _pks_as_text(rows: QuerySet[Any]) -> QuerySet[Any]:
    """The rows' primary keys as the text an event's ``target_id`` holds."""
    return rows.annotate(pk_text=Cast("pk", CharField())).values("pk_text")


def _readable(user: Any) -> Q | None:
    """Which events a reader of the log may read; None: every one (admins).

    An auditor reads the events of the agents they may view, and the events about no
    agent that stop or gather those agents: kill-switch presses over them (the global
    switch, their teams' switches) and incidents they may see (incidents_visible). The
    rest (teams' members and settings, people's tokens, the audit page's own use) is for
    admins; a whole export carries those events withheld, as their hashes only
    (docs/audit-trust.md, "Who reads what").
    """
    if roles.is_admin(user):
        return None
    agents = agents_with_perm(user=user)
    switches = KillSwitch.objects.filter(
        Q(scope=Scope.GLOBAL) | Q(scope=Scope.TEAM, team__in=agents.values("team_id"))
    )
    no_agent = Q(agent_id__isnull=True)
    return (
        Q(agent_id__in=agents.values("pk"))
        | (no_agent & Q(target_type="killswitch.killswitch", target_id__in=_pks_as_text(switches)))
        | (
            no_agent
            & Q(
                target_type="incidents.incident",
                target_id__in=_pks_as_text(incidents_visible(user=user)),
            )
        )
    )


def audit_events(*, user: Any, filters: AuditFilters | None = None) -> QuerySet[AuditEvent]:
    """Events the user may read, newest first (``_readable`` says which)."""
    if not roles.can_read_audit_log(user):
        return AuditEvent.objects.none()
    events = AuditEvent.objects.all()
    readable = _readable(user)
    if readable is not None:
        events = events.filter(readable)
    return audit_filter(events, filters or AuditFilters())


def audit_export_events(*, user: Any, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """What an export holds, newest first, each event annotated ``withheld``.

    Filtered: the events the user may read that match, none withheld. Unfiltered, the
    whole log, so that it verifies against the checkpoints: every event, those the user
    may not read marked ``withheld`` (the export writes only their place in the chain).
    """
    if not roles.can_read_audit_log(user):
        return AuditEvent.objects.none()
    readable = _readable(user)
    if filters != AuditFilters() or readable is None:
        return audit_events(user=user, filters=filters).annotate(withheld=Value(False))
    withheld = Case(
        When(readable, then=Value(False)), default=Value(True), output_field=BooleanField()
    )
    return AuditEvent.objects.annotate(withheld=withheld).order_by("-seq")


def audit_filter(events: QuerySet[AuditEvent], f: AuditFilters) -> QuerySet[AuditEvent]:
    """``events`` narrowed by the filters, newest first. Callers decide who reads what:
    ``audit_events`` for a person; management commands, run by operators, for all."""
    if f.agent:
        agent_ids = Agent.objects.filter(slug=f.agent).values("pk")
        events = events.filter(agent_id__in=agent_ids)
    if f.actor:
        events = events.filter(actor_label=f.actor)
    if f.verb:
        found = verbs.matching(f.verb)
        events = events.filter(verb=found[0]) if len(found) == 1 else events.filter(verb__in=found)
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
