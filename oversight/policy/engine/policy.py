"""CompiledPolicy: one policy version, indexed by action, deciding requests.

Combination, independent of order: any firing forbid denies; else, without a matching
grant or firing permit, deny (least privilege: a hold never lets a person approve what the
agent was not granted); else any firing hold holds; else allow. Conditions are evaluated only
as far as the outcome needs, one class at a time (forbids, then holds, then permits), but
every rule of the deciding class is evaluated, so the reasons name all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .conditions import build_activation, clean_message, evaluate
from .items import CompiledGrant, CompiledLimit, CompiledRule
from .patterns import ActionIndex, is_action_name, is_resource
from .types import Decision, Outcome, Reason, Request

# Plans are cached per action name; agents choose action names, so the cache is bounded
# and a flood of distinct names only costs the uncached (still indexed) lookup.
_PLAN_CACHE_SIZE = 10_000
_KIND_ORDER = {"rule": 0, "grant": 1, "default": 2, "error": 3}


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything in the policy whose action pattern matches one action name."""

    valid_action: bool
    forbids: tuple[CompiledRule, ...]
    holds: tuple[CompiledRule, ...]
    permits: tuple[CompiledRule, ...]
    grants: tuple[CompiledGrant, ...]
    limits: tuple[CompiledLimit, ...]


class _Evaluator:
    """Evaluates conditions for one request, building the CEL activation on first need.

    Results are remembered by condition text for the rest of the request: real policies
    repeat conditions (`env == "production"`) across rules, and a condition is a pure
    function of the request, so the second rule gets the answer for a dict lookup.
    """

    __slots__ = ("_activation", "_request", "_results")

    def __init__(self, request: Request) -> None:
        self._request = request
        self._activation: Any = None
        self._results: dict[str, bool | str] = {}

    def result(self, rule: CompiledRule) -> bool | str:
        """Whether the rule's condition holds, or a str saying why it could not be evaluated."""
        if rule.broken is not None:
            return rule.broken
        result = self._results.get(rule.condition)
        if result is None:
            if self._activation is None:
                self._activation = self._activate()
            if isinstance(self._activation, str):
                result = self._activation
            else:
                result = evaluate(rule.expression, self._activation)
            self._results[rule.condition] = result
        return result

    def _activate(self) -> Any:
        try:
            return build_activation(self._request)
        except Exception as exc:  # e.g. params nested too deeply to convert
            message = clean_message(str(exc)) or type(exc).__name__
            return f"the request cannot be evaluated: {message}"


class CompiledPolicy:
    """One compiled policy version. Immutable after construction; safe across threads."""

    def __init__(
        self,
        *,
        version: int,
        grants: Iterable[tuple[str, CompiledGrant]],
        rules: Iterable[tuple[str, CompiledRule]],
        limits: Iterable[tuple[str, CompiledLimit]],
        problems: tuple[str, ...] = (),
    ) -> None:
        self.version = version
        # What compile_policy had to drop, widen or coerce; empty for a clean policy.
        self.problems = problems
        self._grants = ActionIndex(grants)
        self._rules = ActionIndex(rules)
        self._limits = ActionIndex(limits)
        self._plans: dict[str, _Plan] = {}

    def decide(self, request: Request) -> Decision:
        """Allow, deny or hold `request`, with the reasons. Never raises; fails closed."""
        try:
            return self._decide(request)
        except Exception as exc:
            return self._deny_for_error("engine error", f"the policy engine failed: {_say(exc)}")

    def may_use(self, action: str, time: datetime) -> bool:
        """Whether a grant (unexpired) or permit rule covers `action` on some resource and
        no forbid rule refuses it on every resource whatever is asked (no condition, or a
        broken rule, which fires on every request): what an agent's tool listing shows.
        Resources and conditions are decided per call."""
        plan = self._plan(action)
        if not plan.valid_action:
            return False
        if any(
            rule.matches_resource is None and (rule.broken is not None or rule.expression is None)
            for rule in plan.forbids
        ):
            return False
        return bool(plan.permits) or any(
            grant.expires_at is None or grant.expires_at > time for grant in plan.grants
        )

    def matching_limits(self, request: Request) -> tuple[int, ...]:
        """Ids of the limits whose action and resource patterns match `request`."""
        return _matching_limits(self._plan(request.action), request.resource)

    def _plan(self, action: str) -> _Plan:
        plan = self._plans.get(action)
        if plan is None:
            by_effect: dict[str, list[CompiledRule]] = {"forbid": [], "hold": [], "permit": []}
            for rule in self._rules.lookup(action):
                by_effect[rule.effect].append(rule)
            plan = _Plan(
                valid_action=is_action_name(action),
                forbids=_by_id(by_effect["forbid"]),
                holds=_by_id(by_effect["hold"]),
                permits=_by_id(by_effect["permit"]),
                grants=_by_id(self._grants.lookup(action)),
                limits=_by_id(self._limits.lookup(action)),
            )
            # A plain dict is enough across threads: two threads building the same plan
            # build equal plans, and the GIL makes each assignment atomic.
            if len(self._plans) < _PLAN_CACHE_SIZE:
                self._plans[action] = plan
        return plan

    def _decide(self, request: Request) -> Decision:
        action, resource, time = request.action, request.resource, request.time
        if not isinstance(action, str) or not isinstance(resource, str):
            return self._deny_for_error("invalid request", "action and resource must be text")
        plan = self._plan(action)
        if not plan.valid_action:
            return self._deny_for_error(
                "invalid request", f"action {action!r} is not a valid action name"
            )
        if not is_resource(resource):
            return self._deny_for_error(
                "invalid request", f"resource {resource!r} is empty or holds whitespace or NUL"
            )
        if not isinstance(time, datetime) or time.utcoffset() is None:
            return self._deny_for_error("invalid request", "time must be an aware datetime")

        evaluator = _Evaluator(request)
        errors: list[Reason] = []
        forbids, _ = _firing(plan.forbids, resource, evaluator, errors)
        if forbids:
            return self._decision("deny", forbids + errors)
        holds, fired = _firing(plan.holds, resource, evaluator, errors)
        allowing = [
            grant.reason
            for grant in plan.grants
            if (grant.matches_resource is None or grant.matches_resource(resource))
            and (grant.expires_at is None or grant.expires_at > time)
        ]
        permits, _ = _firing(plan.permits, resource, evaluator, errors)
        allowing += permits
        if not allowing:
            # Least privilege first: a hold never lets a person approve what the agent
            # was not granted, so without a grant or permit even a held action is denied.
            default = Reason(
                "default",
                None,
                "no matching grant",
                "deny",
                f"no grant or permit rule allows {action} on {resource}",
            )
            return self._decision("deny", [default, *errors])
        grant_ids = tuple(reason.id for reason in allowing if reason.kind == "grant")
        if holds:
            return Decision(
                outcome="hold",
                reasons=_sorted(holds + errors),
                policy_version=self.version,
                approvals_required=max(rule.approvals for rule in fired),
                hold_expires_in=min(rule.expires_in for rule in fired),
                separation_of_duties=any(rule.separation_of_duties for rule in fired),
                limit_ids=_matching_limits(plan, resource),
                edits_allowed=all(rule.edits_allowed for rule in fired),
                approver_sets=tuple(
                    rule.approvers
                    for rule in sorted(fired, key=lambda r: r.id)
                    if rule.approvers is not None
                ),
                grant_ids=grant_ids,
            )
        limit_ids = _matching_limits(plan, resource)
        return self._decision("allow", allowing + errors, limit_ids, grant_ids)

    def _decision(
        self,
        outcome: Outcome,
        reasons: list[Reason],
        limit_ids: tuple[int, ...] = (),
        grant_ids: tuple[int, ...] = (),
    ) -> Decision:
        return Decision(
            outcome=outcome,
            reasons=_sorted(reasons),
            policy_version=self.version,
            approvals_required=0,
            hold_expires_in=None,
            separation_of_duties=False,
            limit_ids=limit_ids,
            grant_ids=grant_ids,
        )

    def _deny_for_error(self, name: str, detail: str) -> Decision:
        return self._decision("deny", [Reason("error", None, name, "deny", detail)])


def _firing(
    rules: tuple[CompiledRule, ...], resource: str, evaluator: _Evaluator, errors: list[Reason]
) -> tuple[list[Reason], list[CompiledRule]]:
    """The reasons of every rule in `rules` that fires, and those rules.

    A failing condition adds an error reason; for a forbid or hold the rule then fires
    (with a rule reason saying so), for a permit it does not.
    """
    reasons: list[Reason] = []
    fired: list[CompiledRule] = []
    for rule in rules:
        if rule.matches_resource is not None and not rule.matches_resource(resource):
            continue
        result = evaluator.result(rule) if rule.needs_evaluation else True
        if result is True:
            reasons.append(rule.fired_reason)
            fired.append(rule)
        elif result is not False:
            rule_reasons = rule.failed_reasons(result)
            errors.append(rule_reasons[-1])
            if rule.effect != "permit":
                reasons.append(rule_reasons[0])
                fired.append(rule)
    return reasons, fired


def _matching_limits(plan: _Plan, resource: str) -> tuple[int, ...]:
    if not isinstance(resource, str):
        raise TypeError("resource must be text")
    return tuple(
        limit.id
        for limit in plan.limits
        if limit.matches_resource is None or limit.matches_resource(resource)
    )


def _by_id(items: list[Any]) -> tuple[Any, ...]:
    return tuple(sorted(items, key=lambda item: item.id))


def _sorted(reasons: list[Reason]) -> tuple[Reason, ...]:
    """Reasons in a fixed order (kind, id, text), so policy order never shows."""
    return tuple(
        sorted(
            reasons,
            key=lambda r: (_KIND_ORDER[r.kind], r.id is None, r.id or 0, r.name, r.detail),
        )
    )


def _say(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
