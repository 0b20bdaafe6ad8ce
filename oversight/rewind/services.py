"""Undo of what an agent did: a compensation is an action like any other.

    action_undo           a person asks: the compensation (the undo action, its params
                          from the original's recorded contract) goes through the
                          decision pipeline under the same agent: rules, limits,
                          approvals and kill switches apply to it as to anything
    compensations_claim   the agent's compensator (its SDK worker) takes the runnable
                          compensations, newest original first, for a lease
    compensations_report  it reports what it found and what it left, for a batch of
                          compensations at once (``compensation_report``: one): undone,
                          conflict (the state was not the recorded after-state: nothing
                          changed), not_reversible, failed or skipped; the original is
                          rolled back only when undone left the state it had before

Every step is audited; the original and its compensation are locked while they change.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from oversight.agents.constants import UNDO_TOKEN_NAME
from oversight.agents.locking import agent_lock
from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import token_create
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.auth import AgentUnavailableError, token_refresh
from oversight.gateway.constants import RUNNABLE, ActionStatus
from oversight.gateway.exceptions import ConflictError, NotFoundError
from oversight.gateway.models import Action
from oversight.gateway.pipeline import ActionInput, Credentials, decide
from oversight.incidents.models import TriggerKind
from oversight.incidents.services import incident_open_safely
from oversight.live import broadcasts
from oversight.live.publish import after_commit
from oversight.policy.engine.compensation import UndoError, undo_params

LEASE = dt.timedelta(minutes=5)
OUTCOMES = ("undone", "conflict", "not_reversible", "failed", "skipped")
# A compensation still on its way (or done): no second one for the same action.
_LIVE = (
    ActionStatus.PENDING,
    ActionStatus.ALLOWED,
    ActionStatus.APPROVED,
    ActionStatus.SUCCEEDED,
)
_STATUS = {"undone": ActionStatus.SUCCEEDED, "skipped": ActionStatus.CANCELLED}
# What a report reads of a compensation and its original (and their live rows show):
# their params and recorded states are not needed, and JSON costs to read.
_REPORT_FIELDS = (
    "agent",
    "compensates",
    "action",
    "resource",
    "status",
    "compensation_outcome",
    "reasons",
    "created_at",
    "after",
)
# ... and of the original, read with the compensation (its state before, to compare).
_ORIGINAL_FIELDS = tuple(f"compensates__{name}" for name in (*_REPORT_FIELDS, "before"))
# What an undo reads of the original (not its agent: locking the agent's row too would
# make the undos of one agent wait for each other from their first statement).
UNDO_FIELDS = (
    "agent",
    "environment",
    "action",
    "resource",
    "params",
    "before",
    "after",
    "status",
    "reversibility",
    "undo_contract",
    "compensates",
    "session_id",
    "created_at",
    "finished_at",
)


def _target(action: Action) -> tuple[str, str, str]:
    return ("gateway.action", str(action.pk), f"{action.action} on {action.resource}"[:200])


def _closes_at(contract: dict[str, Any] | None, done_at: dt.datetime) -> dt.datetime | None:
    seconds = (contract or {}).get("window_seconds")
    return done_at + dt.timedelta(seconds=seconds) if seconds else None


def undo_deadline(action: Action) -> dt.datetime | None:
    """Until when the action may be undone, from its recorded contract."""
    return _closes_at(action.undo_contract, action.finished_at or action.created_at)


def undo_blocked(
    *,
    status: str,
    reversibility: str,
    contract: dict[str, Any] | None,
    done_at: dt.datetime,
    now: dt.datetime,
) -> tuple[str, str]:
    """Why an action recorded so cannot be undone now: (a reason code, a sentence), or
    ("", "") when it can. The rule for a single undo and for a rewind's plan (which reads
    rows, not actions, and says the code)."""
    if status == ActionStatus.ROLLED_BACK:
        return "already_undone", "It has been rolled back."
    if status != ActionStatus.SUCCEEDED:
        label = ActionStatus(status).label.lower()
        return (
            f"not_run:{status}",
            f"Only an action that succeeded can be undone; this one is {label}.",
        )
    if not reversibility:
        return "unknown", "Its reversibility is unknown: its grant names no way to undo it."
    if reversibility != "reversible" or not contract:
        code = reversibility if reversibility != "reversible" else "no_compensation"
        return code, f"This action is {reversibility}: its grant names no way to undo it."
    closes_at = _closes_at(contract, done_at)
    if closes_at is not None and now > closes_at:
        return "window_closed", f"Its undo window closed at {closes_at:%Y-%m-%d %H:%M} UTC."
    return "", ""


def live_undos(action_ids: Any) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
    """The compensations of these actions still on their way, or done (one statement):
    (its id, its status) by the action it undoes."""
    found = Action.objects.filter(compensates_id__in=action_ids, status__in=_LIVE).order_by()
    return {
        original: (pk, status)
        for original, pk, status in found.values_list("compensates_id", "pk", "status")
    }


def undo_refusal(
    action: Action,
    now: dt.datetime | None = None,
    *,
    live: dict[uuid.UUID, tuple[uuid.UUID, str]] | None = None,
) -> str:
    """Why the action cannot be undone now ("" when it can). ``live``: ``live_undos`` of
    a batch the action is in, read by the caller (read here otherwise)."""
    if action.compensates_id is not None:
        return "A compensation is not undone in turn."
    _code, refusal = undo_blocked(
        status=action.status,
        reversibility=action.reversibility,
        contract=action.undo_contract,
        done_at=action.finished_at or action.created_at,
        now=now or timezone.now(),
    )
    if refusal:
        return refusal
    try:
        _undo_params_of(action)
    except ValidationError as exc:
        return exc.messages[0]
    on_its_way = (live if live is not None else live_undos([action.pk])).get(action.pk)
    if on_its_way is not None:
        return f"An undo of this action is already {on_its_way[1]} ({on_its_way[0]})."
    return ""


def _undo_params_of(action: Action) -> dict[str, Any]:
    """The params of the action's undo, from its contract over what it was asked and what
    it reported; ValidationError, saying which and why, when they cannot be had (an action
    without the param its grant's undo reads), so that no Undo is offered for it."""
    contract = action.undo_contract or {}
    try:
        return undo_params(
            contract.get("params") or {},
            original=action.params,
            before=action.before,
            after=action.after,
        )
    except (UndoError, ValueError) as exc:
        raise ValidationError(f"Its undo could not be worked out: {exc}") from None


def _undo_token(agent_id: int, environment: str) -> AgentToken:
    """The token compensations are decided under: one per agent and environment, made by
    Oversight the first time, once (the agent's row is locked while it is made, so two
    asks at once make one); its raw value is never kept (Oversight decides with its
    hash)."""

    def existing() -> AgentToken | None:
        return AgentToken.objects.filter(
            agent_id=agent_id,
            environment=environment,
            name=UNDO_TOKEN_NAME,
            revoked_at__isnull=True,
        ).first()

    found = existing()
    if found is not None:
        return found
    with transaction.atomic():
        agent = agent_lock(agent_id)
        found = existing()
        if found is not None:
            return found
        token, _raw = token_create(
            actor=Actor.system("rewind"), agent=agent, environment=environment, name=UNDO_TOKEN_NAME
        )
    return token


def _undo_credentials(agent_id: int, environment: str) -> AgentToken:
    """The undo token, read afresh; ValidationError when its agent cannot take undos now."""
    try:
        fresh = token_refresh(_undo_token(agent_id, environment).token_hash)
    except AgentUnavailableError as exc:  # paused or retired: its compensator cannot run
        raise ValidationError(
            f"{exc} Its compensator cannot take undos now; to stop an agent and rewind"
            " it, engage its kill switch instead."
        ) from None
    if fresh is None:
        raise ValidationError("The agent's undo token is gone; ask again.")
    return fresh


def undo_tokens(action_ids: Any) -> dict[tuple[int, str], AgentToken]:
    """The undo tokens (by agent and environment) the undos of these actions are decided
    under, read (or made, and committed) before they are asked for. Asks side by side
    share them, so none may be one that an ask made in its transaction, which the others
    cannot see until it commits. An agent that cannot take undos now is left out: its
    asks say why."""
    keys = (
        Action.objects.filter(pk__in=action_ids)
        .order_by()
        .values_list("agent_id", "environment")
        .distinct()
    )
    found = {}
    for agent_id, environment in keys:
        try:
            found[(agent_id, environment)] = _undo_credentials(agent_id, environment)
        except ValidationError:
            continue
    return found


@dataclass(frozen=True)
class UndoAsk:
    """An undo worked out and checked, not yet decided (``undo_prepare``)."""

    original: Action
    credentials: AgentToken
    data: ActionInput


def undo_original(action_id: uuid.UUID) -> Action:
    """The action to undo, locked (for ``undo_prepare``) in the caller's transaction: two
    undos of it, asked at once, are checked one after the other."""
    return Action.objects.select_for_update(no_key=True).only(*UNDO_FIELDS).get(pk=action_id)


def undo_prepare(
    *,
    actor: Actor,
    original: Action,
    tokens: dict[tuple[int, str], AgentToken] | None = None,
    live: dict[uuid.UUID, tuple[uuid.UUID, str]] | None = None,
) -> UndoAsk:
    """In the caller's transaction: the original (locked by the caller, with UNDO_FIELDS:
    ``undo_original``) checked, its undo worked out. ValidationError when it cannot be
    undone, raised before it changes anything (it may make the agent's undo token, once,
    in a savepoint of its own, and note the token's use), so a caller may record the
    refusal in the same transaction. ``tokens``: the undo tokens read before a rewind
    step's asks (``undo_tokens``), shared by them (the pipeline reads a token again if it
    changed since); ``live``: the batch's ``live_undos``, read after locking its originals."""
    refusal = undo_refusal(original, live=live)
    if refusal:
        raise ValidationError(refusal)
    contract = original.undo_contract or {}
    params = _undo_params_of(original)
    key = (original.agent_id, original.environment)
    fresh = (tokens or {}).get(key) or _undo_credentials(*key)
    data = ActionInput(
        action=contract["action"],
        resource=original.resource,
        params=params,
        reason=f"undo of {original.action} {original.pk}, asked by {actor.label}"[:1000],
        before=original.after,
        session_id=original.session_id,
        parent_id=original.pk,
        compensates=original.pk,
    )
    return UndoAsk(original, fresh, data)


def undo_decide(*, actor: Actor, ask: UndoAsk) -> Action:
    """In the same transaction: the compensation through the decision pipeline, as
    decided (allowed, held for a reviewer, denied or halted), and the ask audited. It
    raises no ValidationError: a failure here is the whole transaction's."""
    compensation, _created = decide(credentials=Credentials.of(ask.credentials), data=ask.data)
    audit_record(
        actor=actor,
        verb=verbs.UNDO_REQUESTED,
        target=_target(ask.original),
        agent_id=ask.original.agent_id,
        after={"compensation": str(compensation.pk), "status": compensation.status},
    )
    return compensation


@transaction.atomic
def action_undo(*, actor: Actor, action: Action) -> Action:
    """Ask for the undo of one action; the compensation as decided. ValidationError when
    it cannot be undone."""
    ask = undo_prepare(actor=actor, original=undo_original(action.pk))
    return undo_decide(actor=actor, ask=ask)


def _claimable(agent_id: int, now: dt.datetime) -> Any:
    return Action.objects.filter(
        agent_id=agent_id, compensates__isnull=False, status__in=RUNNABLE
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def compensations_claim(*, token: AgentToken, limit: int = 20) -> list[Action]:
    """What the agent's own compensator (its SDK worker) takes."""
    return compensations_claim_for(agent_id=token.agent_id, limit=limit)


@transaction.atomic
def compensations_claim_for(
    *, agent_id: int, limit: int = 20, lease: dt.timedelta = LEASE
) -> list[Action]:
    """The agent's runnable compensations nobody holds, newest original first, held for
    ``lease``: a compensator that dies mid-way gives them back when the lease runs out."""
    now = timezone.now()
    ids = list(
        _claimable(agent_id, now)
        .select_for_update(skip_locked=True, no_key=True)
        .order_by("-compensates__created_at")
        .values_list("pk", flat=True)[:limit]
    )
    Action.objects.filter(pk__in=ids).update(claimed_until=now + lease)
    found = Action.objects.filter(pk__in=ids).select_related("compensates")
    return sorted(found, key=lambda a: a.compensates.created_at, reverse=True)


@dataclass(frozen=True)
class Report:
    outcome: str
    found: Any = None
    left: Any = None
    detail: str = ""


@dataclass(frozen=True)
class Reported:
    """One report's fate in a batch: the compensation as recorded, or why it was not
    taken (NotFoundError, ConflictError); nothing of it was written then."""

    id: uuid.UUID
    compensation: Action | None = None
    error: NotFoundError | ConflictError | None = None


MAX_REPORTS = 100  # reports a batch may carry
# What a report writes on its compensation.
_REPORT_WRITES = (
    "status",
    "compensation_outcome",
    "compensation_found",
    "compensation_left",
    "after",
    "error",
    "finished_at",
    "claimed_until",
)


def compensation_report(*, token: AgentToken, action_id: uuid.UUID, report: Report) -> Action:
    """What the agent's own compensator did."""
    return compensation_report_for(
        agent=token.agent,
        actor=Actor.for_agent(token.agent),
        action_id=action_id,
        report=report,
    )


def compensation_report_for(
    *, agent: Agent, actor: Actor, action_id: uuid.UUID, report: Report
) -> Action:
    """What a compensator (the agent's worker, or its team's webhook) did with one
    compensation, once: a batch of one (``compensations_report_for``), its error raised."""
    (done,) = compensations_report_for(agent=agent, actor=actor, reports=[(action_id, report)])
    if done.error is not None:
        raise done.error
    assert done.compensation is not None
    return done.compensation


def compensations_report(
    *, token: AgentToken, reports: Sequence[tuple[uuid.UUID, Report]]
) -> list[Reported]:
    """What the agent's own compensator did with a batch of compensations."""
    actor = Actor.for_agent(token.agent)
    return compensations_report_for(agent=token.agent, actor=actor, reports=reports)


def _check_batch(reports: Sequence[tuple[uuid.UUID, Report]]) -> None:
    if not reports:
        raise ValidationError("No report to take.")
    if len(reports) > MAX_REPORTS:
        raise ValidationError(f"At most {MAX_REPORTS} reports at a time.")
    for _pk, report in reports:
        if report.outcome not in OUTCOMES:
            raise ValidationError(f"outcome must be one of {', '.join(OUTCOMES)}.")


def _taken(compensation: Action | None) -> NotFoundError | ConflictError | None:
    """Why a report of this compensation (as locked, or None) is not taken, if it is not."""
    if compensation is None:
        return NotFoundError("No such compensation.")
    if compensation.status not in RUNNABLE:
        return ConflictError(
            f"This compensation is {compensation.status}; its outcome is not taken.",
            "already_reported" if compensation.compensation_outcome else "not_runnable",
        )
    return None


@transaction.atomic
def compensations_report_for(
    *, agent: Agent, actor: Actor, reports: Sequence[tuple[uuid.UUID, Report]]
) -> list[Reported]:
    """What a compensator did with each of a batch of the agent's compensations, in one
    transaction: each taken once (a report of one already reported, earlier in the batch
    too, or of one that is not the agent's, is answered with its error and writes
    nothing). An original is rolled back only when its undo left the state it had before.
    ValidationError, before any write, for a batch that is empty, too large or has an
    unknown outcome. ``agent``: the compensations', as its caller has it (the live rows
    show it)."""
    _check_batch(reports)
    locked = {  # the compensations and their originals, all locked, in one statement
        c.pk: c
        for c in Action.objects.select_for_update(no_key=True, of=("self", "compensates"))
        .select_related("compensates")
        .only(*_REPORT_FIELDS, *_ORIGINAL_FIELDS)
        .filter(pk__in=[pk for pk, _report in reports], agent_id=agent.pk)
        .filter(compensates__isnull=False)
        .order_by("pk")  # one order for every batch: two batches cannot deadlock
    }
    now = timezone.now()
    done: list[Reported] = []
    for pk, report in reports:
        compensation = locked.get(pk)
        error = _taken(compensation)
        if error is not None or compensation is None:
            done.append(Reported(pk, error=error))
            continue
        compensation.agent = agent  # for the live row (a reported one is in no queue)
        _apply(actor, compensation, report, now)
        done.append(Reported(pk, compensation))
    taken = [d.compensation for d in done if d.compensation is not None]
    if taken:
        Action.objects.bulk_update(taken, _REPORT_WRITES)
        _roll_back_originals(actor, taken)
        after_commit(lambda: _announce(taken))
    return done


def _apply(actor: Actor, compensation: Action, report: Report, now: dt.datetime) -> None:
    """The report on its compensation (saved by the caller), audited; an undo that failed
    opens an incident."""
    before_status = compensation.status
    compensation.status = _STATUS.get(report.outcome, ActionStatus.FAILED)
    compensation.compensation_outcome = report.outcome
    compensation.compensation_found, compensation.compensation_left = report.found, report.left
    compensation.after, compensation.error = report.left, report.detail[:5000]
    compensation.finished_at, compensation.claimed_until = now, None
    audit_record(
        actor=actor,
        verb=verbs.UNDO_REPORTED,
        target=_target(compensation),
        agent_id=compensation.agent_id,
        before={"status": before_status},
        after={
            "status": compensation.status,
            "outcome": report.outcome,
            "found": report.found,
            "left": report.left,
            "detail": report.detail[:500],
        },
    )
    if report.outcome == "failed":
        incident_open_safely(
            actor=actor,
            kind=TriggerKind.COMPENSATION,
            target=("gateway.action", str(compensation.pk)),
            summary=f"Undo failed: {compensation.action} on {compensation.resource}"
            + (f" ({report.detail[:120]})" if report.detail else ""),
            agent=compensation.agent,
        )


def _roll_back_originals(actor: Actor, compensations: list[Action]) -> None:
    """The originals (read and locked with their compensations, and kept on them for the
    answer) rolled back, in one statement, where the undo restored their state; a
    compensation undone to another state leaves its original as it was."""
    restored = []
    for compensation in compensations:
        original = compensation.compensates
        assert original is not None
        if compensation.compensation_outcome != "undone":
            continue
        original.agent = compensation.agent  # the same agent's: loaded, for the live row
        if original.status != ActionStatus.SUCCEEDED:
            continue
        if compensation.compensation_left != original.before:
            continue  # undone, but not to the state it had before: not shown as rolled back
        original.status = ActionStatus.ROLLED_BACK
        restored.append(original)
        audit_record(
            actor=actor,
            verb=verbs.ACTION_ROLLED_BACK,
            target=_target(original),
            agent_id=original.agent_id,
            before={"status": ActionStatus.SUCCEEDED, "state": original.after},
            after={"status": original.status, "state": compensation.compensation_left},
        )
    if restored:
        Action.objects.filter(pk__in=[o.pk for o in restored]).update(
            status=ActionStatus.ROLLED_BACK
        )


def _announce(compensations: list[Action]) -> None:
    """Their live rows, and their originals' when rolled back."""
    for compensation in compensations:
        broadcasts.action_changed(compensation.pk, created=False, action=compensation)
        original = compensation.compensates
        if original is not None and original.status == ActionStatus.ROLLED_BACK:
            broadcasts.action_changed(original.pk, created=False, action=original)
