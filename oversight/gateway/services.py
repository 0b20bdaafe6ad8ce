"""The decision path: every agent action goes through `action_decide`. And result reports.

Order, as in the design: agent state (checked at authentication) -> kill switches ->
policy -> environment (staging: dry run) -> limits -> persist Action and AuditEvent in
one transaction. Any error on the way gives deny or hold, never allow.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from oversight.agents.constants import AgentStatus, Environment
from oversight.agents.models import Agent, AgentToken
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.core.metrics import decision_observed
from oversight.gateway.constants import ActionStatus
from oversight.gateway.exceptions import ConflictError, InvalidInputError
from oversight.gateway.hashing import action_hash, canonical_hash
from oversight.gateway.models import Action, IdempotencyKey
from oversight.gateway.recording import action_record, action_record_at_once
from oversight.killswitch.models import KillSwitch
from oversight.killswitch.selectors import halting_switch
from oversight.live import broadcasts
from oversight.live.publish import after_commit
from oversight.notifications.services import notify_action_held
from oversight.policy.compiled import policy_and_limits_for
from oversight.policy.constants import DEFAULT_HOLD_SECONDS, OnExceed
from oversight.policy.engine import Decision, Request
from oversight.policy.limits import LimitResult, charge_plan, limits_consume
from oversight.policy.models import Limit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionInput:
    action: str
    resource: str
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    reversible: bool = False
    before: Any = None
    session_id: str = ""
    parent_id: uuid.UUID | None = None


@dataclass
class _Outcome:
    status: str
    reasons: list[dict[str, Any]]
    policy_version: int = 0
    approvals_required: int = 0
    separation_of_duties: bool = False
    hold_for: timedelta | None = None
    charges: list[dict[str, Any]] = field(default_factory=list)
    pause_agent: bool = False


def _reason(
    kind: str, name: str, effect: str, detail: str, id: int | None = None
) -> dict[str, Any]:
    return {"kind": kind, "id": id, "name": name, "effect": effect, "detail": detail}


def policy_request(
    *, agent: Agent, environment: str, action: str, resource: str, params: Any, now: Any
) -> Request:
    """The engine's view of an action: the same for real decisions and previews."""
    return Request(
        action=action,
        resource=resource,
        params=params,
        agent={
            "slug": agent.slug,
            "team": agent.team.slug,
            "risk_tier": agent.risk_tier,
            "owner": agent.owner.get_username(),
        },
        env=environment,
        time=now,
    )


def reason_dicts(decision: Decision) -> list[dict[str, Any]]:
    return [_reason(r.kind, r.name, r.effect, r.detail, r.id) for r in decision.reasons]


def _engine_decision(token: AgentToken, data: ActionInput, now: Any) -> Decision | None:
    agent = token.agent
    try:
        request = policy_request(
            agent=agent,
            environment=token.environment,
            action=data.action,
            resource=data.resource,
            params=data.params,
            now=now,
        )
        return policy_and_limits_for(agent)[0].decide(request)
    except Exception:  # the decision path fails closed
        logger.exception("policy evaluation failed for agent %s", agent.slug)
        return None


def _matching_limits(token: AgentToken, decision: Decision) -> list[Limit]:
    by_id = policy_and_limits_for(token.agent)[1]
    return [by_id[pk] for pk in decision.limit_ids if pk in by_id]


def _apply_limits(
    token: AgentToken, data: ActionInput, decision: Decision, now: Any
) -> LimitResult:
    return limits_consume(limits=_matching_limits(token, decision), params=data.params, now=now)


def _halting_switch(token: AgentToken) -> KillSwitch | None:
    """Authentication reads the engaged switch's id with the token (see auth.py)."""
    switch_id = getattr(token, "engaged_switch_id", ...)
    if switch_id is ...:  # a token loaded some other way
        return halting_switch(agent_id=token.agent_id, team_id=token.agent.team_id)
    if switch_id is None:
        return None
    return (
        KillSwitch.objects.select_related("team", "agent")
        .filter(pk=switch_id, engaged=True)  # released since: no longer halts
        .first()
    )


def _decide_policy(
    token: AgentToken, data: ActionInput, now: Any
) -> tuple[_Outcome, Decision | None]:
    """Everything but the limits: the outcome so far, and the decision whose limits are
    to be charged (None when nothing is charged: halted, denied, dry run)."""
    switch = _halting_switch(token)
    if switch is not None:
        detail = f"kill switch for {switch.agent or switch.team or 'everything'}: {switch.reason}"
        reasons = [_reason("killswitch", "kill switch", "halt", detail, switch.pk)]
        return _Outcome(ActionStatus.HALTED, reasons), None

    decision = _engine_decision(token, data, now)
    if decision is None:
        reason = _reason("error", "policy error", "deny", "the policy could not be evaluated")
        return _Outcome(ActionStatus.DENIED, [reason]), None
    reasons = reason_dicts(decision)
    outcome = _Outcome(ActionStatus.DENIED, reasons, policy_version=decision.policy_version)
    if decision.outcome == "deny":
        return outcome, None

    agent = token.agent
    if agent.hold_all:  # a serious alert is open: stop and ask
        detail = agent.hold_all_reason or "a serious monitoring alert is open"
        reasons = [*reasons, _reason("alert", "monitoring alert", "hold", detail)]
        outcome.reasons = reasons
    held = decision.outcome == "hold" or agent.hold_all

    if token.environment == Environment.STAGING:
        would_be = "held for approval" if held else "allowed"
        note = _reason(
            "environment", "staging", "dry_run", f"staging: recorded, not run (would be {would_be})"
        )
        outcome.status, outcome.reasons = ActionStatus.DRY_RUN, [*reasons, note]
        return outcome, None

    if held:
        outcome.status = ActionStatus.PENDING
        outcome.approvals_required = max(decision.approvals_required, 1)
        outcome.separation_of_duties = decision.separation_of_duties
        outcome.hold_for = decision.hold_expires_in or timedelta(seconds=DEFAULT_HOLD_SECONDS)
    else:
        outcome.status = ActionStatus.ALLOWED

    return outcome, decision


def _with_limits(outcome: _Outcome, limits: LimitResult) -> _Outcome:
    worst = limits.strictest
    if worst is None:
        outcome.charges = [c.__dict__ for c in limits.charges]
        return outcome
    limit_reason = _reason(
        "limit", worst.limit.name, worst.limit.on_exceed, worst.why, worst.limit.pk
    )
    outcome.reasons = [*outcome.reasons, limit_reason]
    if worst.limit.on_exceed == OnExceed.HOLD:
        outcome.status = ActionStatus.PENDING
        outcome.approvals_required = max(outcome.approvals_required, 1)
        outcome.hold_for = outcome.hold_for or timedelta(seconds=DEFAULT_HOLD_SECONDS)
    else:
        outcome.status = ActionStatus.DENIED
        outcome.pause_agent = worst.limit.on_exceed == OnExceed.PAUSE
    return outcome


def _decide(token: AgentToken, data: ActionInput, now: Any) -> _Outcome:
    outcome, decision = _decide_policy(token, data, now)
    if decision is None:
        return outcome
    return _with_limits(outcome, _apply_limits(token, data, decision, now))


def _claim_idempotency_key(agent_id: int, key: str, body_hash: str) -> IdempotencyKey | None:
    """Insert the key, or return the row someone else inserted first.

    A concurrent insert of the same key waits for the first transaction to commit, so the
    row returned already points at its action.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO gateway_idempotencykey (agent_id, key, body_hash, created_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (agent_id, key) DO NOTHING RETURNING id",
            [agent_id, key, body_hash, timezone.now()],
        )
        if cursor.fetchone():
            return None
    return IdempotencyKey.objects.select_related("action").get(agent_id=agent_id, key=key)


def _pause_agent(token: AgentToken, why: str) -> None:
    from oversight.agents.services import agent_update  # agents -> gateway, not the reverse

    agent_update(actor=Actor.system("limits"), agent=token.agent, status=AgentStatus.PAUSED)
    logger.warning("paused agent %s: %s", token.agent.slug, why)


class StaleCredentialsError(Exception):
    """A recalled token (auth.token_recall) did not get its decision written at once:
    authenticate again, and decide with that token."""


def action_decide(
    *, token: AgentToken, data: ActionInput, idempotency_key: str = "", recalled: bool = False
) -> tuple[Action, bool]:
    """Decide, record the Action and its AuditEvent, and return (action, created).

    With an idempotency key seen before, returns the first answer (created False), or
    raises ConflictError when the body differs. Each new decision is counted, with the
    time it took including its commit, in the metrics (see oversight/core/metrics.py).

    On PostgreSQL, outside a transaction, the usual case is written by one statement
    (``_decide_at_once``), which also checks that the token's credentials are still the
    database's; anything else takes the general path, one transaction. ``recalled``: the
    token was kept from an earlier request and never takes the general path (raises
    StaleCredentialsError instead).
    """
    started = time.perf_counter()
    body_hash = canonical_hash({**data.__dict__, "parent_id": str(data.parent_id or "")})
    action = _decide_at_once(token, data, idempotency_key, body_hash)
    if action is not None:
        created = True
    elif recalled:
        raise StaleCredentialsError
    else:
        action, created = _action_decide(
            token=token, data=data, idempotency_key=idempotency_key, body_hash=body_hash
        )
    if created:
        decision_observed(status=action.decision, seconds=time.perf_counter() - started)
    return action, created


def _decide_at_once(
    token: AgentToken, data: ActionInput, idempotency_key: str, body_hash: str
) -> Action | None:
    """The decision written by one statement that is its own transaction (see
    gateway/record_sql.py), or None when the general path must decide: not PostgreSQL,
    inside a caller's transaction, a parent to check, a limit exceeded, a key seen before,
    credentials changed since the token was read."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or data.parent_id:
        return None
    now = timezone.now()
    outcome, decision = _decide_policy(token, data, now)
    charges: list[Any] = []
    if decision is not None:
        charges, exceeded = charge_plan(_matching_limits(token, decision), data.params)
        if exceeded:
            return None
    action = _new_action(token, data, outcome, now)
    recorded = action_record_at_once(
        action=action,
        audit=_audit_args(token, data, action),
        idempotency_key=idempotency_key,
        body_hash=body_hash,
        charges=charges,
        now=now,
        credentials=(token.token_hash, getattr(token, "fingerprint", None)),
    )
    if not recorded:
        return None
    _announce(action)  # committed already
    return action


@transaction.atomic
def _action_decide(
    *, token: AgentToken, data: ActionInput, idempotency_key: str, body_hash: str
) -> tuple[Action, bool]:
    if idempotency_key:
        existing = _claim_idempotency_key(token.agent_id, idempotency_key, body_hash)
        if existing is not None:
            if existing.body_hash != body_hash or existing.action is None:
                raise ConflictError(
                    "This Idempotency-Key was used with a different request.",
                    "idempotency_key_reused",
                )
            return existing.action, False

    if (
        data.parent_id
        and not Action.objects.filter(pk=data.parent_id, agent_id=token.agent_id).exists()
    ):
        raise InvalidInputError("parent_id", "No action of this agent has this id.")
    now = timezone.now()
    outcome = _decide(token, data, now)
    action = _new_action(token, data, outcome, now)
    if outcome.pause_agent:
        _pause_agent(token, outcome.reasons[-1]["detail"])
    action_record(
        action=action, idempotency_key=idempotency_key, audit=_audit_args(token, data, action)
    )
    _announce(action)
    return action, True


def _new_action(token: AgentToken, data: ActionInput, outcome: _Outcome, now: Any) -> Action:
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
        status=outcome.status,
        decision=outcome.status,
        reasons=outcome.reasons,
        policy_version=outcome.policy_version,
        approvals_required=outcome.approvals_required,
        separation_of_duties=outcome.separation_of_duties,
        expires_at=now + outcome.hold_for if outcome.hold_for else None,
        request_hash=action_hash(data.action, data.resource, data.params),
        limit_usage=outcome.charges,
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
            "environment": token.environment,
        },
    }


def _announce(action: Action) -> None:
    """After the commit (at once when there is no transaction): the live feeds, and the
    reviewers of a held action."""
    after_commit(lambda: broadcasts.action_changed(action.pk, created=True, action=action))
    if action.status == ActionStatus.PENDING:
        after_commit(lambda: notify_action_held(action_id=action.pk))
