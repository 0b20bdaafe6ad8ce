"""The decision pipeline: every agent action is decided here, by these steps in this order.

    credentials   who asks: token, agent, team, owner, switch, fingerprint (auth.py)
    agent_state   active? (else 403; paused and retired agents are refused at the door)
    kill_switch   an engaged switch in scope: halted
    release       which release decides (stable, or a rollout's candidate) and which is
                  evaluated beside it in a shadow rollout (releases/assignment.py)
    environment   staging: decided, recorded as a dry run, never executed
    policy        grants and rules of the release: deny, hold or allow, with the reasons;
                  the shadow release's verdict is recorded beside it, never enforced
    limits        what the decision charges; what is over before any counter is read
    record        write the Action and its AuditEvent, or report what prevents it
    announce      after the commit: live feeds, reviewers of a held action

``decide`` runs them for the API and the fast lane (and so for the SDK and the
simulator, which call those); ``preview`` runs the same steps for the policy page's
"try it" box, read-only: its record step charges limits in a savepoint it rolls back
and writes nothing. Each rule has this one implementation.

The record step (recording.py) is one database statement on PostgreSQL. It checks what
may have changed since the credentials were read and reports what it found as data;
``decide`` handles each finding in one place, without evaluating the policy again
unless the credentials changed:

    stale credentials   read them again (refused if revoked, paused, retired) and decide again
    limit exceeded      the strictest response (deny, hold, pause the agent); write that,
                        a hold charging the limits the action is not over
    key seen before     the first answer, or 409 when the body differs
    unknown parent      404

Any error on the way gives an error answer or a denial, never an allow.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from oversight.agents.constants import AgentStatus, Environment
from oversight.agents.models import Agent, AgentToken
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.core.metrics import decision_observed
from oversight.gateway import recording
from oversight.gateway.auth import AgentUnavailableError, token_again
from oversight.gateway.constants import ActionStatus
from oversight.gateway.exceptions import ConflictError, NotFoundError
from oversight.gateway.hashing import action_hash, canonical_hash
from oversight.gateway.models import Action
from oversight.killswitch.models import KillSwitch
from oversight.lib.request_id import current_request_id
from oversight.live import broadcasts
from oversight.live.publish import after_commit
from oversight.notifications.services import notify_action_held
from oversight.policy.compiled import Contracts, grant_contracts_for, policy_and_limits_for
from oversight.policy.constants import DEFAULT_HOLD_SECONDS, UNKNOWN_REVERSIBILITY, OnExceed
from oversight.policy.engine import Decision, Request
from oversight.policy.limits import (
    Charges,
    Exceeded,
    charge_plan,
    describe,
    limits_would_exceed,
    strictest,
)
from oversight.policy.models import Limit
from oversight.releases.assignment import Assignment, assign

logger = logging.getLogger(__name__)

NO_PARENT_MESSAGE = "parent_id: no action of this agent has this id."

# Credentials read again at most this often for one request: a change between reading
# and writing is rare, twice in a row is a storm of edits; then answer an error.
_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class ActionInput:
    """What an agent asks to do (the API's body)."""

    action: str
    resource: str
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    reversible: bool = False
    before: Any = None
    session_id: str = ""
    parent_id: uuid.UUID | None = None
    traceparent: str = ""  # W3C trace context, when the agent sends one
    reports_outcome: bool = False  # the agent says it reports the outcome after
    resource_params: list[str] | None = None  # the params the resource is made of, if said
    release: int | None = None  # the release version the session runs, if said
    # Set only by Oversight itself, for an undo (oversight/rewind): the action it undoes.
    compensates: uuid.UUID | None = None


@dataclass(frozen=True)
class Credentials:
    """Who asks, as authentication read it. A preview has no token."""

    agent: Agent  # with its team and owner
    environment: str
    switch_id: int | None
    token: AgentToken | None = None
    fingerprint: str = ""

    @classmethod
    def of(cls, token: AgentToken) -> Credentials:
        """From a token authenticated by auth.py (which reads the switch and fingerprint)."""
        return cls(
            agent=token.agent,
            environment=token.environment,
            switch_id=token.engaged_switch_id,
            token=token,
            fingerprint=token.fingerprint,
        )


@dataclass
class Outcome:
    """The decision so far; each step may change it."""

    status: str
    reasons: list[dict[str, Any]]
    policy_version: int = 0
    approvals_required: int = 0
    separation_of_duties: bool = False
    edits_allowed: bool = True
    approver_sets: list[Any] = field(default_factory=list)
    hold_for: timedelta | None = None
    limits: dict[int, Limit] = field(default_factory=dict)  # the limits that apply, by id
    charges: Charges = field(default_factory=list)
    pause_agent: bool = False
    release_version: int | None = None
    # What the grant that allowed it says (read, reversible, irreversible or unknown), and
    # a reversible grant's compensation as it was when decided.
    reversibility: str = ""
    undo: dict[str, Any] | None = None
    # A shadow rollout's candidate: its version, and what it would have decided.
    shadow_version: int | None = None
    shadow_status: str = ""
    shadow_reasons: list[dict[str, Any]] | None = None


def _reason(
    kind: str, name: str, effect: str, detail: str, id: int | None = None
) -> dict[str, Any]:
    return {"kind": kind, "id": id, "name": name, "effect": effect, "detail": detail}


# --- the steps, in order ------------------------------------------------------------------


def agent_state(credentials: Credentials) -> None:
    """Only an active agent may act. Authentication refuses the others; a kept copy is
    checked again by the record step (its fingerprint covers the agent's row)."""
    agent = credentials.agent
    if agent.status != AgentStatus.ACTIVE:
        raise AgentUnavailableError(f"Agent {agent.slug} is {agent.status}.")


def kill_switch(credentials: Credentials, data: ActionInput) -> Outcome | None:
    """Halted when a switch in scope was engaged as the credentials were read; the record
    step orders this against engaging (see decision_record's header). An undo passes:
    it repairs what the agent did (docs/rewind.md: halt, then rewind); policy, limits and
    approvals still decide it."""
    if credentials.switch_id is None or data.compensates is not None:
        return None
    switch = (
        KillSwitch.objects.select_related("team", "agent").filter(pk=credentials.switch_id).first()
    )
    target = (switch.agent or switch.team or "everything") if switch else "everything"
    detail = f"engaged for {target}: {switch.reason if switch else 'no reason recorded'}"
    reason = _reason("killswitch", "kill switch", "halt", detail, credentials.switch_id)
    agent = credentials.agent
    return Outcome(
        ActionStatus.HALTED,
        [reason],
        policy_version=agent.policy_version,
        release_version=agent.stable_version,
    )


def release(credentials: Credentials, data: ActionInput) -> Assignment:
    """The release that decides this request, and the one evaluated in its shadow."""
    return assign(
        credentials.agent,
        environment=credentials.environment,
        session_id=data.session_id,
        running=data.release,
    )


def environment(credentials: Credentials) -> bool:
    """True for a dry run: staging tokens are decided and recorded, never executed."""
    return credentials.environment == Environment.STAGING


def policy_request(credentials: Credentials, data: ActionInput, now: datetime) -> Request:
    """The engine's view of an action."""
    agent = credentials.agent
    return Request(
        action=data.action,
        resource=data.resource,
        params=data.params,
        agent={
            "slug": agent.slug,
            "team": agent.team.slug,
            "risk_tier": agent.risk_tier,
            "owner": agent.owner.get_username(),
        },
        env=credentials.environment,
        time=now,
        undo=data.compensates is not None,
    )


def reason_dicts(decision: Decision) -> list[dict[str, Any]]:
    """The decision's reasons; a grant or rule with no row of its own (one of a release
    that is not the agent's working copy) has no id."""
    return [
        _reason(r.kind, r.name, r.effect, r.detail, None if (r.id or 0) < 0 else r.id)
        for r in decision.reasons
    ]


def standing_holds(agent: Agent, data: ActionInput) -> list[dict[str, Any]]:
    """What holds an action the policy allows, read from the agent's row (so from the
    credentials, and covered by their fingerprint): an open serious alert holds every
    action; a tool whose definition changed since it was pinned holds its calls until an
    owner accepts the new definition (agents/tool_pins.py)."""
    holds = []
    if agent.hold_all:  # a serious alert is open: stop and ask
        detail = agent.hold_all_reason or "a serious monitoring alert is open"
        holds.append(_reason("alert", "monitoring alert", "hold", detail))
    if data.action in (agent.changed_tools or ()):
        detail = "the tool's definition changed since it was pinned; an owner must accept it"
        holds.append(_reason("tool_pin", "changed tool definition", "hold", detail))
    return holds


def policy(
    credentials: Credentials,
    data: ActionInput,
    now: datetime,
    dry_run: bool,
    assignment: Assignment,
) -> Outcome:
    """Grants and rules (the compiled policy of the assigned release), the standing holds
    (an open serious alert, a changed tool), then the environment's dry run; in a shadow
    rollout, what the candidate would have decided, beside it."""
    outcome = _judge(credentials, data, now, dry_run, assignment.release_id)
    outcome.release_version = assignment.version
    if assignment.shadow_id is not None:
        shadow = _judge(credentials, data, now, False, assignment.shadow_id)
        outcome.shadow_version = assignment.shadow_version
        outcome.shadow_status, outcome.shadow_reasons = shadow.status, shadow.reasons
    return outcome


def _judge(
    credentials: Credentials,
    data: ActionInput,
    now: datetime,
    dry_run: bool,
    release_id: int | None,
) -> Outcome:
    agent = credentials.agent
    try:
        compiled, limits = policy_and_limits_for(agent, release_id)
        decision = compiled.decide(policy_request(credentials, data, now))
        contracts = grant_contracts_for(agent, release_id)
    except Exception:  # the decision path fails closed
        logger.exception("policy evaluation failed for agent %s", agent.slug)
        reason = _reason("error", "policy error", "deny", "the policy could not be evaluated")
        return Outcome(ActionStatus.DENIED, [reason], policy_version=agent.policy_version)
    reasons = reason_dicts(decision)
    outcome = Outcome(ActionStatus.DENIED, reasons, policy_version=decision.policy_version)
    if decision.outcome == "deny":
        return outcome
    standing = standing_holds(agent, data)
    outcome.reasons = [*reasons, *standing]
    held = decision.outcome == "hold" or bool(standing)
    if dry_run:
        would_be = "held for approval" if held else "allowed"
        detail = f"recorded, not run (would be {would_be})"
        outcome.reasons.append(_reason("environment", "staging", "dry_run", detail))
        outcome.status = ActionStatus.DRY_RUN
        return outcome
    if held:
        outcome.status = ActionStatus.PENDING
        outcome.approvals_required = max(decision.approvals_required, 1)
        outcome.separation_of_duties = decision.separation_of_duties
        outcome.edits_allowed = decision.edits_allowed
        outcome.approver_sets = list(decision.approver_sets)
        outcome.hold_for = decision.hold_expires_in or timedelta(seconds=DEFAULT_HOLD_SECONDS)
    else:
        outcome.status = ActionStatus.ALLOWED
    outcome.limits = {pk: limits[pk] for pk in decision.limit_ids if pk in limits}
    outcome.reversibility, outcome.undo = reversibility(decision, contracts)
    return outcome


# The most cautious class wins when several grants allow an action.
_CAUTION = {"irreversible": 3, UNKNOWN_REVERSIBILITY: 2, "reversible": 1, "read": 0}


def reversibility(decision: Decision, contracts: Contracts) -> tuple[str, dict[str, Any] | None]:
    """What the grants that allow the action say it is (held or not); a permit rule alone,
    or a grant that says nothing: unknown."""
    said = [contracts.get(grant_id, {}) for grant_id in decision.grant_ids]
    if not said:
        return UNKNOWN_REVERSIBILITY, None
    worst = max(said, key=lambda c: _CAUTION[c.get("reversibility") or UNKNOWN_REVERSIBILITY])
    found = worst.get("reversibility") or UNKNOWN_REVERSIBILITY
    return found, worst.get("undo") if found == "reversible" else None


def limits(outcome: Outcome, data: ActionInput) -> Outcome:
    """What an allowed or held decision charges; a limit over before any counter is read
    (an amount missing, negative or not a number; a maximum below one) answers at once."""
    if not outcome.limits:
        return outcome
    outcome.charges, exceeded = charge_plan(list(outcome.limits.values()), data.params)
    return over_limit(outcome, exceeded) if exceeded else outcome


def over_limit(outcome: Outcome, exceeded: list[Exceeded]) -> Outcome:
    """The strictest exceeded limit's response: pause the agent (and deny), deny, or hold.
    A hold gives a reason for each limit that holds it, the strictest first; a denial the
    strictest's alone.

    A denial charges nothing. A hold (every exceeded limit says hold) still charges each
    limit the action is not over, all or none, as any decision is charged: a held action
    reserves quota, so once approved it has been counted like any other, and approvals
    never take a deny limit beside the hold over. When the record step finds one of those
    over too, this is called again with it, and the stricter response wins. The limits
    that held it are not charged: they are full, their counters stay at most their
    maximum, and the approval is a person's yes above them
    (docs/decisions/0029-a-held-action-is-charged-on-the-other-limits.md)."""
    worst = strictest(exceeded)
    limit = worst.limit
    holding = limit.on_exceed == OnExceed.HOLD  # then every exceeded limit holds it
    deciding = [worst, *(e for e in exceeded if e is not worst)] if holding else [worst]
    outcome.reasons = [
        *outcome.reasons,
        *(_reason("limit", e.limit.name, e.limit.on_exceed, e.why, e.limit.pk) for e in deciding),
    ]
    if holding:
        over = {e.limit.pk for e in exceeded}
        outcome.charges = [(lim, amount) for lim, amount in outcome.charges if lim.pk not in over]
        outcome.status = ActionStatus.PENDING
        outcome.approvals_required = max(outcome.approvals_required, 1)
        outcome.hold_for = outcome.hold_for or timedelta(seconds=DEFAULT_HOLD_SECONDS)
    else:
        outcome.charges = []
        outcome.status = ActionStatus.DENIED
        outcome.approvals_required, outcome.separation_of_duties = 0, False
        outcome.approver_sets = []
        outcome.hold_for = None
        outcome.reversibility, outcome.undo = "", None
        outcome.pause_agent = limit.on_exceed == OnExceed.PAUSE
    return outcome


def evaluate(credentials: Credentials, data: ActionInput, now: datetime) -> Outcome:
    """The steps before the record, on the credentials as read."""
    agent_state(credentials)
    halted = kill_switch(credentials, data)
    if halted is not None:
        return halted
    assignment = release(credentials, data)
    dry_run = environment(credentials)
    return limits(policy(credentials, data, now, dry_run, assignment), data)


def record(
    credentials: Credentials,
    data: ActionInput,
    outcome: Outcome,
    *,
    idempotency_key: str,
    body_hash: str,
    now: datetime,
) -> tuple[Action, recording.Found]:
    """Write the decision (recording.py), pausing the agent in the same transaction when
    a limit says so."""
    token = credentials.token
    if token is None:
        raise RuntimeError("a decision is recorded only for an authenticated token")
    action = _new_action(token, data, outcome, now)
    write = recording.Write(
        action=action,
        audit=_audit_args(token, data, action),
        charges=outcome.charges,
        idempotency_key=idempotency_key,
        body_hash=body_hash,
        token_hash=token.token_hash,
        fingerprint=credentials.fingerprint,
        now=now,
    )
    if not outcome.pause_agent:
        return action, recording.decision_write(write)
    with transaction.atomic():
        found = recording.decision_write(write)
        if found.kind == recording.RECORDED:
            _pause_agent(credentials.agent, outcome.reasons[-1]["detail"])
    return action, found


def announce(action: Action) -> None:
    """After the commit (at once when there is no transaction): the live feeds, and the
    reviewers of a held action."""
    after_commit(lambda: broadcasts.action_changed(action.pk, created=True, action=action))
    if action.status == ActionStatus.PENDING:
        from oversight.approvals.escalation import actions_escalate_due  # approvals -> gateway

        # Nobody eligible (no reviewer yet, fewer than the approvals): to the admins at once.
        after_commit(lambda: actions_escalate_due(action_ids=[action.pk]))
        after_commit(lambda: notify_action_held(action_id=action.pk))


# --- the entry points ----------------------------------------------------------------------


def request_body_hash(data: ActionInput) -> str:
    """What an Idempotency-Key is bound to."""
    body = {**data.__dict__, "parent_id": str(data.parent_id or "")}
    del body["reports_outcome"]  # how the agent goes on, not what it asks
    del body["resource_params"]  # how the resource was made, not what it asks
    del body["release"]  # what the agent runs, not what it asks
    # Which session asks, not what it asks: the same request from another session (an
    # MCP proxy started anew, say) finds the first answer. Blank rather than left out,
    # so that a body without one hashes as it always has.
    body["session_id"] = ""
    if not data.traceparent:  # as bodies were hashed before agents could send it
        del body["traceparent"]
    if data.compensates is None:
        del body["compensates"]
    else:
        body["compensates"] = str(data.compensates)
    return canonical_hash(body)


def decide(
    *, credentials: Credentials, data: ActionInput, idempotency_key: str = ""
) -> tuple[Action, bool]:
    """Decide, record the Action and its AuditEvent, announce it; (action, created).

    With an Idempotency-Key seen before: the first answer (created False), or
    ConflictError when the body differs. Each new decision is counted, with the time it
    took including its commit, in the metrics (oversight/core/metrics.py).
    """
    started = time.perf_counter()
    body_hash = request_body_hash(data)
    outcome: Outcome | None = None
    attempts = 0
    while True:
        now = timezone.now()
        if outcome is None:
            attempts += 1
            if attempts > _MAX_ATTEMPTS:
                raise ConflictError(
                    "The agent's credentials kept changing while deciding; ask again.",
                    "credentials_changing",
                )
            outcome = evaluate(credentials, data, now)
        action, found = record(
            credentials,
            data,
            outcome,
            idempotency_key=idempotency_key,
            body_hash=body_hash,
            now=now,
        )
        if found.kind == recording.RECORDED:
            announce(action)
            decision_observed(status=action.decision, seconds=time.perf_counter() - started)
            return action, True
        if found.kind == recording.STALE:
            credentials = _credentials_again(credentials)
            outcome = None
        elif found.kind == recording.LIMIT_EXCEEDED:
            outcome = over_limit(outcome, _exceeded(outcome, found.exceeded))
        elif found.kind == recording.KEY_SEEN:
            return _first_answer(found, body_hash, credentials.environment, outcome), False
        elif found.kind == recording.NO_PARENT:
            raise NotFoundError(NO_PARENT_MESSAGE)
        else:
            raise RuntimeError(f"unknown finding {found.kind!r}")


@dataclass(frozen=True)
class Preview:
    """What ``decide`` would answer now, with the limits it would charge."""

    status: str
    reasons: list[dict[str, Any]]
    policy_version: int
    approvals_required: int = 0
    limits: list[Any] = field(default_factory=list)  # the limits that apply (or their rows)
    exceeded: list[int] = field(default_factory=list)  # their ids, when over


REFUSED = "refused"  # a preview's status where the API refuses to decide (403, 404)


def preview(*, credentials: Credentials, data: ActionInput) -> Preview:
    """The same steps as ``decide``, read-only: the record step's checks that need no
    write (the parent) are made, limits are charged in a savepoint that is rolled back,
    and nothing is written. Where the API would refuse, the status is ``refused`` with
    the API's message as the reason."""
    now = timezone.now()
    try:
        outcome = evaluate(credentials, data, now)
    except AgentUnavailableError as refused:
        reason = _reason("agent", "agent state", "refuse", str(refused))
        return Preview(REFUSED, [reason], credentials.agent.policy_version)
    if not recording.parent_known(agent_id=credentials.agent.pk, parent_id=data.parent_id):
        reason = _reason("request", "parent_id", "refuse", NO_PARENT_MESSAGE)
        return Preview(REFUSED, [reason], outcome.policy_version)
    exceeded_ids = sorted(limits_would_exceed(outcome.charges, now))
    if exceeded_ids:
        outcome = over_limit(outcome, _exceeded(outcome, exceeded_ids))
    over = [r["id"] for r in outcome.reasons if r["kind"] == "limit"]
    return Preview(
        status=outcome.status,
        reasons=outcome.reasons,
        policy_version=outcome.policy_version,
        approvals_required=outcome.approvals_required,
        limits=list(outcome.limits.values()),
        exceeded=over,
    )


# --- helpers -----------------------------------------------------------------------------


def _credentials_again(credentials: Credentials) -> Credentials:
    """The record step found the credentials changed: read them again (the fast lane's
    kept copy is replaced)."""
    token = credentials.token
    assert token is not None
    return Credentials.of(token_again(token))


def _exceeded(outcome: Outcome, limit_ids: list[int]) -> list[Exceeded]:
    """The limits the record step (or a preview's trial charge) found over."""
    return [Exceeded(outcome.limits[pk], describe(outcome.limits[pk])) for pk in limit_ids]


def _first_answer(found: recording.Found, body_hash: str, environment: str, now: Outcome) -> Action:
    """The action an Idempotency-Key was first answered with; 409 when this request is
    another (its body differs, or it comes from another environment of the agent: keys are
    the agent's, and a staging token must never be answered with a production action).

    Also 409 when a kill switch halts the agent now (``now``, decided on the credentials
    the record step found current) and the first answer allowed an action that nobody
    reported: the one asking again may be the caller whose answer was lost, which has not
    run it, and must not run it after the switch. (What the first caller ran is still
    reported: a result is not refused for a switch engaged after the decision.)"""
    action = (
        Action.objects.select_related("agent__owner", "agent__team")
        .filter(pk=found.seen_action)
        .first()
    )
    if found.seen_body_hash != body_hash or action is None or action.environment != environment:
        raise ConflictError(
            "This Idempotency-Key was used with a different request.", "idempotency_key_reused"
        )
    if now.status == ActionStatus.HALTED and action.status == ActionStatus.ALLOWED:
        raise ConflictError(
            "A kill switch was engaged after this action was allowed: do not run it (if it "
            "already ran, report its outcome).",
            "halted_since",
        )
    return action


def _pause_agent(agent: Agent, why: str) -> None:
    from oversight.agents.services import agent_update  # agents -> gateway, not the reverse

    agent_update(actor=Actor.system("limits"), agent=agent, status=AgentStatus.PAUSED)
    logger.warning("paused agent %s: %s", agent.slug, why)


def _new_action(token: AgentToken, data: ActionInput, outcome: Outcome, now: datetime) -> Action:
    return Action(
        id=uuid.uuid4(),
        agent=token.agent,
        token=token,
        environment=token.environment,
        action=data.action,
        resource=data.resource,
        params=data.params,
        reason=data.reason,
        reversible=data.reversible,
        before=data.before,
        session_id=data.session_id,
        parent_id=data.parent_id,
        compensates_id=data.compensates,
        traceparent=data.traceparent,
        reports_outcome=data.reports_outcome,
        resource_params=data.resource_params,
        status=outcome.status,
        decision=outcome.status,
        reasons=outcome.reasons,
        policy_version=outcome.policy_version,
        release_version=outcome.release_version,
        reversibility=outcome.reversibility,
        undo_contract=outcome.undo,
        shadow_version=outcome.shadow_version,
        shadow_status=outcome.shadow_status,
        shadow_reasons=outcome.shadow_reasons,
        approvals_required=outcome.approvals_required,
        separation_of_duties=outcome.separation_of_duties,
        edits_allowed=outcome.edits_allowed,
        approver_sets=outcome.approver_sets,
        expires_at=now + outcome.hold_for if outcome.hold_for else None,
        request_hash=action_hash(data.action, data.resource, data.params),
        limit_usage=[],
        request_id=current_request_id(),
    )


def _audit_args(token: AgentToken, data: ActionInput, action: Action) -> dict[str, Any]:
    return {
        "actor": Actor.for_agent(token.agent),
        "verb": verbs.ACTION_DECIDED,
        "target": ("gateway.action", str(action.pk), f"{data.action} on {data.resource}"[:200]),
        "agent_id": token.agent_id,
        "after": {
            "status": action.status,
            "action": data.action,
            "resource": data.resource,
            "params": data.params,
            "before": data.before,
            "reason": data.reason,
            "reasons": action.reasons,
            "policy_version": action.policy_version,
            "release_version": action.release_version,
            "environment": token.environment,
            **({"resource_params": data.resource_params} if data.resource_params else {}),
        },
    }
