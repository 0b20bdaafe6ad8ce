"""Open incidents (by hand, or when something sets one off), run their analysis, and let
the people handling them set the owner, the status and notes. Every change is audited.

Automatic openings come from inside the transaction of what set them off (a kill switch
engaged, a critical alert opened, the guard's rollback, an undo that failed), so the
incident exists exactly when its trigger does. While an incident of the same scope is
unresolved and younger than ``MERGE_WINDOW``, a new trigger joins it instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import Truncator

from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.incidents.models import (
    AnalysisState,
    Incident,
    IncidentNote,
    IncidentScope,
    IncidentStatus,
    IncidentTrigger,
    TriggerKind,
)

logger = logging.getLogger(__name__)

MERGE_WINDOW = dt.timedelta(hours=1)
MAX_NOTE = 5000


def _target(incident: Incident) -> tuple[str, str, str]:
    return "incidents.incident", str(incident.pk), str(incident)[:200]


def _state(incident: Incident) -> dict[str, Any]:
    return {
        "status": incident.status,
        "owner": incident.owner.get_username() if incident.owner else None,
    }


def _scope_of(agent: Agent | None, team: Team | None) -> str:
    if agent is not None:
        return IncidentScope.AGENT
    return IncidentScope.TEAM if team is not None else IncidentScope.GLOBAL


def _queue_analysis(incident_id: int) -> None:
    from oversight.incidents.tasks import incident_analyse_task

    transaction.on_commit(lambda: incident_analyse_task.delay(incident_id), robust=True)


@transaction.atomic
def incident_open(
    *,
    actor: Actor,
    kind: str,
    target: tuple[str, str],
    summary: str,
    agent: Agent | None = None,
    team: Team | None = None,
    title: str = "",
    user: Any = None,
) -> tuple[Incident, bool]:
    """Open an incident for the scope (an agent, a team, or everything when neither is
    given), or add the trigger to the open one of the same scope (automatic triggers
    only). Returns (incident, opened)."""
    if kind not in TriggerKind.values:
        raise ValidationError(f"Unknown trigger {kind!r}.")
    now = timezone.now()
    scope = _scope_of(agent, team)
    if kind != TriggerKind.MANUAL:
        joined = (
            Incident.objects.select_for_update()
            .filter(scope=scope, agent=agent, team=team if agent is None else None)
            .exclude(status=IncidentStatus.RESOLVED)
            .filter(opened_at__gte=now - MERGE_WINDOW)
            .order_by("-opened_at")
            .first()
        )
        if joined is not None:
            _trigger(joined, kind, target, summary, now)
            audit_record(
                actor=actor,
                verb=verbs.INCIDENT_UPDATED,
                target=_target(joined),
                after={"trigger": kind, "summary": summary[:300]},
                agent_id=joined.agent_id,
            )
            return joined, False
    incident = Incident.objects.create(
        title=Truncator(title or summary).chars(200),  # at most 200, "…" when cut
        scope=scope,
        agent=agent,
        team=team if agent is None else None,
        opened_at=now,
        opened_by=user,
        opened_by_label=actor.label,
    )
    _trigger(incident, kind, target, summary, now)
    audit_record(
        actor=actor,
        verb=verbs.INCIDENT_OPENED,
        target=_target(incident),
        after={"title": incident.title, "scope": scope, "trigger": kind, **_state(incident)},
        agent_id=incident.agent_id,
    )
    _queue_analysis(incident.pk)
    return incident, True


def _trigger(incident: Incident, kind: str, target: tuple[str, str], summary: str, at: Any) -> None:
    IncidentTrigger.objects.create(
        incident=incident,
        kind=kind,
        target_type=target[0],
        target_id=str(target[1]),
        summary=summary[:300],
        at=at,
    )


def incident_open_safely(**kwargs: Any) -> Incident | None:
    """For the automatic triggers: an incident that cannot be opened must never fail what
    set it off. Runs in a savepoint of the caller's transaction; on error, logs."""
    try:
        with transaction.atomic():
            return incident_open(**kwargs)[0]
    except Exception:
        logger.exception("could not open an incident for %s", kwargs.get("summary"))
        return None


def incident_analyse(*, incident_id: int) -> Incident | None:
    """Run the analysis and keep its report (idempotent: each run replaces the last)."""
    from oversight.incidents.analysis.report import analyse, incident_scope

    incident = Incident.objects.select_related("agent", "team").filter(pk=incident_id).first()
    if incident is None:
        return None
    started = time.perf_counter()
    try:
        scope = incident_scope(incident)
        report = analyse(incident, scope=scope)
    except Exception as exc:
        logger.exception("incident %s: analysis failed", incident_id)
        Incident.objects.filter(pk=incident_id).update(
            analysis_state=AnalysisState.FAILED, analysis_error=str(exc)[:2000]
        )
        return None
    # The report and the agents it covers change together: whoever may read the report is
    # decided by those agents (selectors.incidents_visible).
    with transaction.atomic():
        Incident.objects.filter(pk=incident_id).update(
            report=report,
            analysis_state=AnalysisState.DONE,
            analysed_at=timezone.now(),
            analysis_seconds=time.perf_counter() - started,
            analysis_error="",
        )
        incident.covered.set(scope.agent_ids)
    incident.refresh_from_db()
    return incident


@transaction.atomic
def incident_reanalyse(*, incident: Incident) -> None:
    Incident.objects.filter(pk=incident.pk).update(analysis_state=AnalysisState.QUEUED)
    _queue_analysis(incident.pk)


@transaction.atomic
def incident_update(
    *, actor: Actor, incident: Incident, status: str | None = None, owner: Any = None
) -> Incident:
    """Set the status and/or the owner (``owner=False`` clears it)."""
    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    before = _state(locked)
    if status is not None:
        if status not in IncidentStatus.values:
            raise ValidationError(f"Unknown status {status!r}.")
        locked.status = status
        locked.resolved_at = timezone.now() if status == IncidentStatus.RESOLVED else None
    if owner is not None:
        locked.owner = owner or None
    after = _state(locked)
    if after == before:
        return locked
    locked.save(update_fields=["status", "resolved_at", "owner"])
    audit_record(
        actor=actor,
        verb=verbs.INCIDENT_UPDATED,
        target=_target(locked),
        before=before,
        after=after,
        agent_id=locked.agent_id,
    )
    return locked


@transaction.atomic
def incident_note_add(*, actor: Actor, incident: Incident, user: Any, body: str) -> IncidentNote:
    body = body.strip()
    if not body:
        raise ValidationError("Write the note first.")
    if len(body) > MAX_NOTE:
        raise ValidationError(f"A note is at most {MAX_NOTE} characters.")
    note = IncidentNote.objects.create(incident=incident, author=user, body=body)
    audit_record(
        actor=actor,
        verb=verbs.INCIDENT_NOTED,
        target=_target(incident),
        after={"note": body[:500]},
        agent_id=incident.agent_id,
    )
    return note
