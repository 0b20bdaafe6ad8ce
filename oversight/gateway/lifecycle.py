"""What happens to an action after it is decided: its result, expiry and cancellation.

Every transition is claimed atomically (a conditional update or a row lock), so a
result, an expiry, a vote and a cancellation can never all win.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from oversight.agents.models import AgentToken
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway import outcomes
from oversight.gateway.auth import token_again
from oversight.gateway.constants import BY_THE_AGENT, FINAL, RUNNABLE, ActionStatus
from oversight.gateway.exceptions import ConflictError, NotFoundError
from oversight.gateway.hashing import action_hash
from oversight.gateway.models import Action
from oversight.gateway.outcomes import OutcomeWrite, outcome_write
from oversight.gateway.reads import action_of_token
from oversight.live import broadcasts
from oversight.live.publish import after_commit
from oversight.notifications.services import notify_action_expired
from oversight.policy.limits import limits_release


@dataclass(frozen=True)
class ResultInput:
    outcome: str  # "succeeded" | "failed"
    after: Any = None
    error: str = ""
    # When given, must match what was decided: an approval covers exactly one action.
    action: str | None = None
    resource: str | None = None
    params: dict[str, Any] | None = None


def action_audit_target(action: Action) -> tuple[str, str, str]:
    """The audit event's target for a change of ``action``."""
    return ("gateway.action", str(action.pk), f"{action.action} on {action.resource}"[:200])


# A write that found the action changed is followed by a read that refuses it (a runnable
# action only changes to a status that is not), so running out of attempts means the
# credentials kept changing.
_REPORT_ATTEMPTS = 3


def action_report_result(*, token: AgentToken, action_id: uuid.UUID, data: ResultInput) -> Action:
    """Record what happened when the agent ran an allowed or approved action. Once only.

    The action is read and checked without a lock, then written only if it is still in
    the status read and the token's credentials are still the database's
    (outcomes.outcome_write): a result, an expiry, a cancellation and another report
    cannot both win. Changed credentials are read again (a revoked token is refused, a
    paused agent too, as authentication would); a changed action is read again.
    """
    for _ in range(_REPORT_ATTEMPTS):
        action = action_of_token(token=token, action_id=action_id)
        if action is None:
            raise NotFoundError("No such action.")
        found = outcome_write(_outcome(token, action, data))
        if found == outcomes.RECORDED:
            return _reported(token, action)
        if found == outcomes.STALE:
            token = token_again(token)
        elif found != outcomes.CHANGED:
            raise RuntimeError(f"unknown finding {found!r}")
    raise ConflictError(
        "The agent's credentials kept changing while reporting; report again.",
        "credentials_changing",
    )


def _outcome(token: AgentToken, action: Action, data: ResultInput) -> OutcomeWrite:
    """The report's write for ``action`` as read (checked first); its new values set on it."""
    _check_reportable(action, data)
    read_status = action.status
    action.status = data.outcome
    action.after = data.after
    action.error = data.error
    action.finished_at = timezone.now()
    audit = {
        "actor": Actor.for_agent(token.agent),
        "verb": verbs.ACTION_REPORTED,
        "target": action_audit_target(action),
        "agent_id": token.agent_id,
        "before": {"status": read_status, "state": action.before},
        "after": {"status": action.status, "state": data.after, "error": data.error},
    }
    return OutcomeWrite(
        action=action,
        from_status=read_status,
        audit=audit,
        token_hash=token.token_hash,
        fingerprint=getattr(token, "fingerprint", ""),  # none: not from auth.py, read again
    )


def _reported(token: AgentToken, action: Action) -> Action:
    action.agent = token.agent  # the same agent, loaded with the token: its live row
    after_commit(lambda: broadcasts.action_changed(action.pk, created=False, action=action))
    return action


def _check_reportable(action: Action, data: ResultInput) -> None:
    """Refuse a report of an action that may not run, or of something else than it."""
    if action.status not in RUNNABLE:
        if action.status in (ActionStatus.SUCCEEDED, ActionStatus.FAILED):
            raise ConflictError(
                f"The outcome was already reported ({action.status}).", "already_reported"
            )
        raise ConflictError(f"An action that is {action.status} may not be run.", "not_runnable")
    if data.action is not None or data.resource is not None or data.params is not None:
        claimed = action_hash(
            data.action if data.action is not None else action.action,
            data.resource if data.resource is not None else action.resource,
            data.params if data.params is not None else action.params,
        )
        if claimed != action.request_hash:
            raise ConflictError(
                "This result is for a different action, resource or params than was decided.",
                "action_mismatch",
            )


def actions_claim(
    found: QuerySet[Action], changes: dict[str, Any], *, give_back: bool = True
) -> list[Action]:
    """Claim the actions of ``found`` that still match it: set ``changes`` on them and,
    with ``give_back``, give back the quota each one holds (it will not run). Returns them
    as they were when claimed, before the change; [] when none matches any more (someone
    else got there first). Inside the caller's transaction.

    What is given back, and what the caller audits as ``before``, is read from the rows
    under their lock, never from a copy read earlier. The race: an approval with edits
    (approvals/edits.py) gives back a held action's charge and charges the edited params
    under the same row lock, in the vote's transaction. A cancellation or an expiry that
    read the action before that vote committed, and gave back the charge it read, would
    give back the old charge twice and the new one never: the counter would show more
    room than the limit has. Here the claim waits for the vote's lock, and PostgreSQL
    checks ``found``'s conditions again on the row the vote committed (READ COMMITTED);
    on SQLite the IMMEDIATE transaction has no other writer. The rows are locked in id
    order, all before any counter, so a claim of many (a kill switch's) and a vote each
    take the action rows before the counters.
    """
    rows = list(_locked(found))
    if rows:
        Action.objects.filter(pk__in=[row.pk for row in rows]).update(**changes)
        if give_back:
            limits_release([charge for row in rows for charge in row.limit_usage])
    return rows


def _locked(found: QuerySet[Action]) -> QuerySet[Action]:
    """``found``, its rows locked for the caller's transaction in id order (as every claim
    takes them)."""
    return found.select_for_update(of=("self",), no_key=True).order_by("pk")


@transaction.atomic
def action_expire_if_due(*, action: Action) -> Action:
    """A held action nobody decided in time becomes expired (a denial). Claimed atomically:
    if a vote or a cancellation got there first, nothing happens here."""
    now = timezone.now()
    if (
        action.status != ActionStatus.PENDING
        or action.expires_at is None
        or action.expires_at > now
    ):
        return action
    due = Action.objects.filter(pk=action.pk, status=ActionStatus.PENDING, expires_at__lte=now)
    if actions_claim(due, {"status": ActionStatus.EXPIRED, "finished_at": now}):
        after_commit(lambda: broadcasts.action_changed(action.pk, created=False))
        after_commit(lambda: notify_action_expired(action_id=action.pk))  # its owner
        audit_record(
            actor=Actor.system("expiry"),
            verb=verbs.ACTION_EXPIRED,
            target=action_audit_target(action),
            agent_id=action.agent_id,
            before={"status": ActionStatus.PENDING},
            after={"status": ActionStatus.EXPIRED},
        )
    return Action.objects.get(pk=action.pk)


# Actions that have not run yet and can still be stopped.
# Statuses of an action that has not run, unless the agent started it (``started_at``: an
# approved action whose run it claimed may have run, so it is never cancelled).
CANCELLABLE = (ActionStatus.PENDING, ActionStatus.APPROVED)


def _not_started(found: QuerySet[Action]) -> QuerySet[Action]:
    """Those of ``found`` the agent has not claimed the run of: one started may have run."""
    return found.filter(started_at__isnull=True)


def _cancel(found: QuerySet[Action], *, actor: Actor, why: str) -> list[Action]:
    """Cancel those of ``found`` that the agent has not started (inside the caller's
    transaction): audited, shown live, their quota given back. The actions cancelled, as
    they were before; those that no longer match lost a race and are left alone."""
    now = timezone.now()
    claimed = actions_claim(
        _not_started(found),
        {"status": ActionStatus.CANCELLED, "finished_at": now, "error": why[:5000]},
    )
    for action in claimed:
        after_commit(lambda pk=action.pk: broadcasts.action_changed(pk, created=False))
        audit_record(
            actor=actor,
            verb=verbs.ACTION_CANCELLED,
            target=action_audit_target(action),
            agent_id=action.agent_id,
            before={"status": action.status},
            after={"status": ActionStatus.CANCELLED, "why": why},
        )
    return claimed


def actions_cancel_not_run(*, actor: Actor, actions: QuerySet[Action], why: str) -> list[Any]:
    """Cancel those of ``actions`` that have not run yet (held, or approved and not
    started); the ids of those cancelled. Inside the caller's transaction."""
    cancelled = _cancel(actions.filter(status__in=CANCELLABLE), actor=actor, why=why)
    return [action.pk for action in cancelled]


def actions_cancel_in_scope(*, actor: Actor, agent_ids: Any, why: str) -> int:
    """Cancel every action of these agents that has not run yet (a kill switch engaged)."""
    found = Action.objects.filter(agent_id__in=agent_ids)
    return len(actions_cancel_not_run(actor=actor, actions=found, why=why))


def actions_lock_cancellable(*, actions: QuerySet[Action]) -> None:
    """Lock, for the rest of the caller's transaction, those of ``actions`` that
    ``actions_cancel_not_run`` may cancel, as ``actions_claim`` locks them. Whatever
    cancels them (a kill switch, a rewind starting) takes them before it appends its own
    audit event: a vote locks its action first and appends to the audit chain last, so a
    change that appended first and then waited for that action would wait for the vote
    while the vote waited for it (a deadlock, one of the two refused)."""
    list(_locked(_not_started(actions.filter(status__in=CANCELLABLE))).values_list("pk"))


def actions_lock_in_scope(*, agent_ids: Any) -> None:
    """``actions_lock_cancellable`` for every action of these agents (a kill switch)."""
    actions_lock_cancellable(actions=Action.objects.filter(agent_id__in=agent_ids))


def actions_cancel_held_for_tool(*, actor: Actor, agent_id: int, action_name: str, why: str) -> int:
    """A changed MCP tool's definition was accepted, or the change withdrawn (``why``):
    the calls held only for that change (no other hold among their reasons) are
    cancelled, so that the agent's next identical call is decided afresh under the
    pinned definition (oversight-mcp chains past a finished action). Inside the caller's
    transaction."""
    held = Action.objects.filter(agent_id=agent_id, action=action_name, status=ActionStatus.PENDING)
    only_for_the_tool = []
    for action in held.only("pk", "reasons"):
        holds = [r for r in action.reasons if isinstance(r, dict) and r.get("effect") == "hold"]
        if holds and all(r.get("kind") == "tool_pin" for r in holds):
            only_for_the_tool.append(action.pk)
    # A decision's reasons never change: only the status is checked again when claimed.
    return len(_cancel(held.filter(pk__in=only_for_the_tool), actor=actor, why=why))


# Ended without running: what an agent may say its caller was told of.
NOT_RUN = FINAL - {ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.ROLLED_BACK}


@transaction.atomic
def action_acknowledge(*, token: AgentToken, action_id: uuid.UUID) -> Action:
    """The agent says its caller was told how the action ended without running (denied,
    rejected, expired...): recorded once, audited; acknowledged again, it stays as first
    recorded. Refused for an action that may still run, or ran (its report says so)."""
    action = action_of_token(token=token, action_id=action_id)
    if action is None:
        raise NotFoundError("No such action.")
    action = action_expire_if_due(action=action)  # as reading it would
    if action.status not in NOT_RUN:
        raise ConflictError(
            "Only an action that ended without running can be acknowledged; this one's status "
            f"is {action.get_status_display().lower()}.",
            "not_ended",
        )
    _stamp_once(token, action, "acknowledged_at", verbs.ACTION_ACKNOWLEDGED)
    action.refresh_from_db()
    return action


def _stamp_once(token: AgentToken, action: Action, field: str, verb: str, **only: Any) -> bool:
    """Set the agent's one-time timestamp ``field`` of ``action`` to now, claimed: only
    while it is unset (and the action matches ``only``). Audited and shown live when
    granted; False when it was set already, or the action no longer matches."""
    now = timezone.now()
    unset = Action.objects.filter(pk=action.pk, **{f"{field}__isnull": True}, **only)
    if not unset.update(**{field: now}):
        return False
    after_commit(lambda: broadcasts.action_changed(action.pk, created=False))
    audit_record(
        actor=Actor.for_agent(token.agent),
        verb=verb,
        target=action_audit_target(action),
        agent_id=action.agent_id,
        before={field: None},
        after={"status": action.status, field: now.isoformat()},
    )
    return True


@transaction.atomic
def action_start(*, token: AgentToken, action_id: uuid.UUID) -> Action:
    """The agent claims the run of an approved action, before it runs it: granted once.
    Several callers may wait on one held action (the same call retried through two
    processes); only the one whose claim is granted runs it, and the others, like any
    later caller, learn it has started and may have run. (An allowed action is claimed by
    its first answer: a replay of it says so.)

    Not a call of an MCP tool whose definition changed since it was approved, before an
    owner accepts the new one: it would run under a definition no owner has looked at
    (its approval stands: started once the definition is accepted, or cancelled)."""
    action = action_of_token(token=token, action_id=action_id)
    if action is None:
        raise NotFoundError("No such action.")
    action = action_expire_if_due(action=action)
    if action.status == ActionStatus.APPROVED and action.awaits_tool_acceptance:
        raise ConflictError(
            "The tool's definition changed since this call was approved, and no owner of "
            "the agent has accepted the new one yet: it is not started, since it would run "
            "under a definition nobody has looked at.",
            "tool_changed",
        )
    started = _stamp_once(
        token, action, "started_at", verbs.ACTION_STARTED, status=ActionStatus.APPROVED
    )
    action.refresh_from_db()
    if started:
        return action
    if action.started_at is not None:
        raise ConflictError(
            "This action was started already, and may have run; it runs at most once.",
            "already_started",
        )
    raise ConflictError(
        "Only an approved action is started this way; this one's status is "
        f"{action.get_status_display().lower()}.",
        "not_runnable",
    )


@transaction.atomic
def action_cancel(*, token: AgentToken, action_id: uuid.UUID, pending_only: bool = False) -> Action:
    """The agent gives up on an action it has not run. ``pending_only``: only while nobody
    has decided it (the agent stopped waiting for a person): one approved in that very
    moment is left approved, for the agent to run, and the cancel is refused."""
    action = action_of_token(token=token, action_id=action_id)
    if action is None:
        raise NotFoundError("No such action.")
    statuses = (ActionStatus.PENDING,) if pending_only else CANCELLABLE
    actor = Actor.for_agent(token.agent)
    found = Action.objects.filter(pk=action.pk, status__in=statuses)
    if not _cancel(found, actor=actor, why=BY_THE_AGENT):
        action.refresh_from_db()
        if action.started_at is not None and action.status == ActionStatus.APPROVED:
            raise ConflictError(
                "This action was started by the agent and may have run; it cannot be cancelled.",
                "not_cancellable",
            )
        raise ConflictError(
            f"An action that is {action.status} cannot be cancelled"
            + (" while only a pending one is (pending_only)." if pending_only else "."),
            "not_cancellable",
        )
    action.refresh_from_db()
    return action
