"""Engage and release kill switches. Each press is audited in its own transaction."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.lifecycle import actions_cancel_in_scope, actions_lock_in_scope
from oversight.gateway.record_sql import SWITCH_LOCK_KEY
from oversight.incidents.models import TriggerKind
from oversight.incidents.services import incident_open_safely
from oversight.killswitch.models import KillSwitch
from oversight.killswitch.selectors import Target
from oversight.live import broadcasts
from oversight.live.publish import after_commit
from oversight.notifications.services import notify_killswitch


def _locked_switch(target: Target) -> KillSwitch:
    """The switch row for the target, created if missing, locked for this transaction.

    First, on PostgreSQL, the lock that orders presses and decisions, exclusively: every
    decision takes it shared before reading the switches in the statement that writes it
    (gateway/sql/decision_record.v7.sql). So the decisions under way commit before this
    press, and those after it wait for its commit and read the new state: no decision
    made under the old state commits after the press's audit event. Taken before any
    other lock of this transaction, so it cannot wait on a decision that waits on it.
    (SQLite serialises every write transaction, so there is nothing to take.)
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SWITCH_LOCK_KEY])
    lookup: dict[str, Any] = {"scope": target.scope, "team": target.team, "agent": target.agent}
    KillSwitch.objects.get_or_create(**lookup)
    return KillSwitch.objects.select_for_update().get(**lookup)


def _record(actor: Actor, switch: KillSwitch, verb: str, before: dict[str, Any]) -> None:
    target = ("killswitch.killswitch", str(switch.pk), str(switch))
    audit_record(
        actor=actor,
        verb=verb,
        target=target,
        before=before,
        after={"engaged": switch.engaged, "reason": switch.reason},
        agent_id=switch.agent_id,
    )


class AlreadyEngagedError(ValidationError):
    """The switch was engaged before this press; the press changed nothing."""


def _already_engaged(target: Target, switch: KillSwitch) -> AlreadyEngagedError:
    since = (
        timezone.localtime(switch.changed_at).strftime("%Y-%m-%d %H:%M %Z")
        if switch.changed_at
        else "an unknown time"
    )
    who = (
        switch.changed_by.get_username()
        if switch.changed_by
        else "the command line or a removed user"
    )
    return AlreadyEngagedError(
        f"The kill switch for {target.display_name} is already engaged since {since} "
        f"by {who}: {switch.reason}"
    )


@transaction.atomic
def killswitch_engage(*, actor: Actor, target: Target, reason: str, user: Any = None) -> KillSwitch:
    """Halt every decision in the target's scope from the very next one on.

    Pressing an engaged switch changes nothing (its reason, time and presser stay, nobody
    is told again, nothing is audited) and raises AlreadyEngagedError saying since when,
    by whom and why. Two people pressing at once: the switch's lock (``_locked_switch``)
    makes the second wait for the first's commit, and it then reads the switch engaged.
    """
    if not reason.strip():
        raise ValidationError("Say why the kill switch is engaged.")
    switch = _locked_switch(target)
    if switch.engaged:
        raise _already_engaged(target, switch)
    agent_ids = _agents_in(target)
    actions_lock_in_scope(agent_ids=agent_ids)  # before the audit chain, as a vote
    before = {"engaged": switch.engaged, "reason": switch.reason}
    switch.engaged, switch.reason = True, reason.strip()
    switch.changed_by, switch.changed_at = user, timezone.now()
    switch.save()
    _record(actor, switch, verbs.KILLSWITCH_ENGAGED, before)
    after_commit(lambda: broadcasts.killswitch_changed(switch.pk))
    after_commit(lambda: notify_killswitch(switch_id=switch.pk, engaged=True))
    # Nothing held or approved in the scope may run after this.
    actions_cancel_in_scope(
        actor=actor,
        agent_ids=agent_ids,
        why=f"kill switch for {target.display_name}: {switch.reason}",
    )
    incident_open_safely(
        actor=actor,
        kind=TriggerKind.KILL_SWITCH,
        target=("killswitch.killswitch", str(switch.pk)),
        summary=f"Kill switch engaged for {target.display_name}: {switch.reason}",
        agent=target.agent,
        team=target.team,
        user=user,
    )
    return switch


def _agents_in(target: Target) -> Any:
    agents = Agent.objects.all()
    if target.agent is not None:
        agents = agents.filter(pk=target.agent.pk)
    elif target.team is not None:
        agents = agents.filter(team=target.team)
    return agents.values("pk")


@transaction.atomic
def killswitch_release(
    *, actor: Actor, target: Target, reason: str, user: Any = None
) -> KillSwitch:
    if not reason.strip():
        raise ValidationError("Say why the kill switch is released.")
    switch = _locked_switch(target)
    if not switch.engaged:
        raise ValidationError(f"The kill switch for {target.label} is not engaged.")
    before = {"engaged": True, "reason": switch.reason}
    switch.engaged, switch.reason = False, reason.strip()
    switch.changed_by, switch.changed_at = user, timezone.now()
    switch.save()
    _record(actor, switch, verbs.KILLSWITCH_RELEASED, before)
    after_commit(lambda: broadcasts.killswitch_changed(switch.pk))
    after_commit(lambda: notify_killswitch(switch_id=switch.pk, engaged=False))
    return switch
