"""Writes of monitoring: raising alerts, people acknowledging and resolving them, and the
agent's automatic response to a critical one. Each change is audited in its transaction.

Lock order, everywhere: the agent row first, then its alerts, and the audit chain last.
Detection and people's clicks therefore queue up per agent instead of deadlocking. The
agent row is taken FOR NO KEY UPDATE: the gateway's decisions hold KEY SHARE on it (their
foreign keys) while they wait for the audit chain, so a FOR UPDATE here taken after our
own audit append would deadlock with them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from oversight.agents.access import AgentAccessDenied
from oversight.agents.constants import APPROVE, CHANGE, AgentStatus, AlertResponse
from oversight.agents.models import Agent
from oversight.agents.permissions import user_has_agent_perm
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.incidents.models import TriggerKind
from oversight.incidents.services import incident_open_safely
from oversight.live import broadcasts
from oversight.live.publish import after_commit
from oversight.monitoring.constants import (
    MAX_EVIDENCE_ACTIONS,
    SEVERITY_RANK,
    UNRESOLVED,
    AlertStatus,
    Severity,
)
from oversight.monitoring.models import Alert
from oversight.notifications.constants import Kind
from oversight.notifications.selectors import action_reviewers
from oversight.notifications.services import notify_people

MONITORING = Actor.system("monitoring")


@dataclass
class Finding:
    """What a detector saw: the alert to open, or to update while it goes on."""

    agent_id: int
    kind: str
    severity: str
    dedupe_key: str
    title: str
    numbers: dict[str, Any]
    actions: list[dict[str, Any]] = field(default_factory=list)
    # The actions are the whole condition as it is now (work left to do), not a sample of
    # a window: an update replaces the alert's evidence instead of adding to it.
    current: bool = False


def _alert_target(alert: Alert) -> tuple[str, str, str]:
    return ("monitoring.alert", str(alert.pk), alert.title[:200])


def _alert_state(alert: Alert) -> dict[str, Any]:
    return {"status": alert.status, "severity": alert.severity, "count": alert.count}


def _merged_actions(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest actions first, each once, at most MAX_EVIDENCE_ACTIONS."""
    seen: dict[str, dict[str, Any]] = {}
    for item in sorted([*new, *old], key=lambda a: a.get("at", ""), reverse=True):
        seen.setdefault(item["id"], item)
    return list(seen.values())[:MAX_EVIDENCE_ACTIONS]


@transaction.atomic
def alert_raise(*, finding: Finding, now: dt.datetime) -> tuple[Alert, bool]:
    """Open an alert for the finding, or update the unresolved one with the same key.

    Returns (alert, opened). Opening is audited and notified; a later sighting bumps
    ``count`` and ``last_seen_at`` and refreshes the evidence, audited only when it
    raises the severity. A critical alert sets off the agent's automatic response.
    """
    # Serialise with other runs and with people resolving this agent's alerts.
    agent = (
        Agent.objects.select_for_update(no_key=True).select_related("team").get(pk=finding.agent_id)
    )
    alert = (
        Alert.objects.select_for_update(no_key=True)
        .filter(agent=agent, dedupe_key=finding.dedupe_key, status__in=UNRESOLVED)
        .first()
    )
    if alert is None:
        alert = Alert.objects.create(
            agent=agent,
            kind=finding.kind,
            severity=finding.severity,
            title=finding.title[:200],
            evidence={**finding.numbers, "actions": finding.actions[:MAX_EVIDENCE_ACTIONS]},
            dedupe_key=finding.dedupe_key,
            opened_at=now,
            last_seen_at=now,
        )
        # The response first: pausing locks the agent FOR UPDATE, before any audit append.
        response = _respond(agent, alert)
        audit_record(
            actor=MONITORING,
            verb=verbs.ALERT_OPENED,
            target=_alert_target(alert),
            after={**_alert_state(alert), "kind": alert.kind, **finding.numbers},
            agent_id=agent.pk,
        )
        _notify(agent, alert, response)
        _open_incident(agent, alert)
        _announce(agent.pk)
        return alert, True

    before = _alert_state(alert)
    escalated = SEVERITY_RANK[finding.severity] > SEVERITY_RANK[alert.severity]
    alert.count += 1
    alert.last_seen_at = max(alert.last_seen_at, now)
    alert.title = finding.title[:200]
    old_actions = alert.evidence.get("actions", [])
    actions = finding.actions if finding.current else _merged_actions(old_actions, finding.actions)
    alert.evidence = {**alert.evidence, **finding.numbers, "actions": actions}
    if escalated:
        alert.severity = finding.severity
    alert.save()
    if escalated:
        response = _respond(agent, alert)
        audit_record(
            actor=MONITORING,
            verb=verbs.ALERT_ESCALATED,
            target=_alert_target(alert),
            before=before,
            after={**_alert_state(alert), **finding.numbers},
            agent_id=agent.pk,
        )
        _notify(agent, alert, response, escalated=True)
        _open_incident(agent, alert)
    _announce(agent.pk)
    return alert, False


def _open_incident(agent: Agent, alert: Alert) -> None:
    """A critical alert opens an incident for its agent (or joins the open one)."""
    if alert.severity != Severity.CRITICAL:
        return
    incident_open_safely(
        actor=MONITORING,
        kind=TriggerKind.ALERT,
        target=("monitoring.alert", str(alert.pk)),
        summary=f"Critical alert: {alert.title}",
        agent=agent,
    )


def _announce(agent_id: int) -> None:
    """After the commit: open alert lists of people who see the agent re-read themselves."""
    after_commit(lambda: broadcasts.alert_changed(agent_id))


def _respond(agent: Agent, alert: Alert) -> str:
    """The agent's automatic response to a critical alert; returns what was done."""
    if alert.severity != Severity.CRITICAL or agent.alert_response == AlertResponse.NONE:
        return ""
    if agent.alert_response == AlertResponse.HOLD:
        if agent_hold_set(agent=agent, alert=alert):
            _note_response(alert, "hold")
            return "hold"
        return ""
    if agent.status == AgentStatus.ACTIVE:
        from oversight.agents.services import agent_update

        agent_update(actor=MONITORING, agent=agent, status=AgentStatus.PAUSED)
        agent.status = AgentStatus.PAUSED
        _note_response(alert, "pause")
        return "pause"
    return ""


def _note_response(alert: Alert, response: str) -> None:
    alert.evidence = {**alert.evidence, "response": response}
    alert.save(update_fields=["evidence"])


def _notify(agent: Agent, alert: Alert, response: str, *, escalated: bool = False) -> None:
    """The agent's reviewers and its owner: an alert opened, or raised to a higher
    severity (told once per severity), with the automatic response it set off."""
    consequence = {
        "hold": " Every action of the agent is now held for a human until it is resolved.",
        "pause": " The agent was paused.",
    }.get(response, "")
    severity = alert.get_severity_display()
    if escalated:
        body = f"An alert on {agent.name} is now {severity.lower()}: {alert.title}.{consequence}"
    else:
        body = f"{severity} alert on {agent.name} opened: {alert.title}.{consequence}"
    notify_people(
        kind=Kind.ALERT_ESCALATED if escalated else Kind.ALERT_OPENED,
        team=agent.team,
        users=[*action_reviewers(agent=agent), agent.owner],
        title=f"[{severity}] {alert.title}",
        body=body,
        link=reverse("monitoring:alert", args=[alert.pk]),
        event=f"alert.escalated:{alert.pk}:{alert.severity}"
        if escalated
        else f"alert.opened:{alert.pk}",
        agent=agent,
    )


# --- the alert hold ------------------------------------------------------------------


def agent_hold_set(*, agent: Agent, alert: Alert) -> bool:
    """Hold every action of the agent for a human, naming the alert. The caller holds the
    agent's row lock. False if a hold was already in force (nothing recorded)."""
    if agent.hold_all:
        return False
    reason = f"Alert #{alert.pk}: {alert.title}"[:300]
    Agent.objects.filter(pk=agent.pk).update(hold_all=True, hold_all_reason=reason)
    agent.hold_all, agent.hold_all_reason = True, reason
    audit_record(
        actor=MONITORING,
        verb=verbs.AGENT_HOLD_SET,
        target=agent,
        before={"hold_all": False, "hold_all_reason": ""},
        after={"hold_all": True, "hold_all_reason": reason, "alert": alert.pk},
    )
    return True


def _agent_hold_clear_if_done(*, actor: Actor, agent: Agent) -> bool:
    """Lift the hold once the agent has no unresolved critical alert left."""
    if not agent.hold_all:
        return False
    critical = Alert.objects.filter(
        agent=agent, severity=Severity.CRITICAL, status__in=UNRESOLVED
    ).exists()
    if critical:
        return False
    before = {"hold_all": True, "hold_all_reason": agent.hold_all_reason}
    Agent.objects.filter(pk=agent.pk).update(hold_all=False, hold_all_reason="")
    agent.hold_all, agent.hold_all_reason = False, ""
    audit_record(
        actor=actor,
        verb=verbs.AGENT_HOLD_CLEARED,
        target=agent,
        before=before,
        after={"hold_all": False, "hold_all_reason": ""},
    )
    return True


# --- people acknowledging and resolving --------------------------------------------------


def user_can_act_on_alerts(user: Any, agent: Agent) -> bool:
    """The owner (change), reviewers (approve) and admins may acknowledge and resolve."""
    return user_has_agent_perm(user, CHANGE, agent) or user_has_agent_perm(user, APPROVE, agent)


def _locked_alert(alert_id: int, user: Any) -> tuple[Agent, Alert]:
    agent_id = Alert.objects.filter(pk=alert_id).values_list("agent_id", flat=True).first()
    if agent_id is None:
        raise Alert.DoesNotExist
    agent = Agent.objects.select_for_update(no_key=True).get(pk=agent_id)
    if not user_can_act_on_alerts(user, agent):
        raise AgentAccessDenied("Only the agent's owner, its reviewers and admins may do this.")
    return agent, Alert.objects.select_for_update(no_key=True).get(pk=alert_id)


@transaction.atomic
def alert_acknowledge(*, user: Any, alert_id: int, now: dt.datetime) -> Alert:
    """Someone is looking into it. Only an open alert can be acknowledged."""
    agent, alert = _locked_alert(alert_id, user)
    if alert.status != AlertStatus.OPEN:
        raise ValidationError(f"This alert is {alert.get_status_display().lower()} already.")
    before = _alert_state(alert)
    alert.status, alert.acknowledged_by, alert.acknowledged_at = AlertStatus.ACKNOWLEDGED, user, now
    alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
    audit_record(
        actor=Actor.for_user(user),
        verb=verbs.ALERT_ACKNOWLEDGED,
        target=_alert_target(alert),
        before=before,
        after=_alert_state(alert),
        agent_id=agent.pk,
    )
    _announce(agent.pk)
    return alert


@transaction.atomic
def alert_resolve_cleared(*, alert_id: int, now: dt.datetime, why: str) -> bool:
    """Resolve, as monitoring, an alert whose condition has cleared: one that lists work
    left to do (Finding.current), not an event. False if someone resolved it meanwhile."""
    agent_id = Alert.objects.filter(pk=alert_id).values_list("agent_id", flat=True).get()
    agent = Agent.objects.select_for_update(no_key=True).get(pk=agent_id)
    alert = Alert.objects.select_for_update(no_key=True).get(pk=alert_id)
    if alert.status == AlertStatus.RESOLVED:
        return False
    before = _alert_state(alert)
    alert.status, alert.resolved_at, alert.resolved_why = AlertStatus.RESOLVED, now, why[:200]
    alert.save(update_fields=["status", "resolved_at", "resolved_why"])
    audit_record(
        actor=MONITORING,
        verb=verbs.ALERT_RESOLVED,
        target=_alert_target(alert),
        before=before,
        after={**_alert_state(alert), "why": why},
        agent_id=agent.pk,
    )
    _agent_hold_clear_if_done(actor=MONITORING, agent=agent)
    _announce(agent.pk)
    return True


@transaction.atomic
def alert_resolve(*, user: Any, alert_id: int, now: dt.datetime) -> Alert:
    """Done with it. Lifts the agent's alert hold when no critical alert is left open.

    A paused agent stays paused: resuming it is a decision made on the agent's page.
    """
    agent, alert = _locked_alert(alert_id, user)
    if alert.status == AlertStatus.RESOLVED:
        raise ValidationError("This alert is resolved already.")
    before = _alert_state(alert)
    alert.status, alert.resolved_by, alert.resolved_at = AlertStatus.RESOLVED, user, now
    alert.save(update_fields=["status", "resolved_by", "resolved_at"])
    actor = Actor.for_user(user)
    audit_record(
        actor=actor,
        verb=verbs.ALERT_RESOLVED,
        target=_alert_target(alert),
        before=before,
        after=_alert_state(alert),
        agent_id=agent.pk,
    )
    _agent_hold_clear_if_done(actor=actor, agent=agent)
    _announce(agent.pk)
    return alert
