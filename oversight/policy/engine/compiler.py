"""Turn a policy version's grants, rules and limits into a CompiledPolicy.

Compiling never fails on bad content. Rules are checked when they are saved, so bad
content here means something slipped past (an older row, a CEL upgrade, a manifest
bug); refusing the whole policy would leave the caller with nothing to decide with.
Instead each bad item is compiled fail-closed and listed in `CompiledPolicy.problems`:

- a grant or permit that cannot be read is dropped (it could only have allowed);
- a forbid or hold that cannot be read fires whenever it might apply: a bad action or
  resource pattern is widened to ``*``, a bad condition counts as failing, so true;
- a rule with an unknown effect is treated as a forbid;
- a limit with a bad pattern is widened to ``*`` (limits only restrict).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .conditions import ConditionError, compile_condition
from .items import CompiledGrant, CompiledLimit, CompiledRule, fired_reason, grant_reason
from .patterns import check_pattern, resource_matcher
from .policy import CompiledPolicy
from .types import GrantSpec, LimitSpec, RuleSpec

_EFFECTS = ("permit", "forbid", "hold")
_DEFAULT_HOLD_EXPIRY = timedelta(minutes=15)


def compile_policy(
    *,
    version: int,
    grants: Sequence[GrantSpec],
    rules: Sequence[RuleSpec],
    limits: Sequence[LimitSpec] = (),
) -> CompiledPolicy:
    """Compile one policy version; do it once per version and share the result.

    The CompiledPolicy is immutable and safe to use from many threads at once.
    """
    problems: list[str] = []
    # Conditions are compiled once per distinct text: rules repeat them, and sharing the
    # text is also what lets a decision evaluate each distinct condition only once.
    conditions: dict[str, Any | ConditionError] = {}
    compiled_grants = [
        (spec.action, grant)
        for spec in grants
        if (grant := _compile_grant(spec, problems)) is not None
    ]
    compiled_rules = [
        found for spec in rules if (found := _compile_rule(spec, problems, conditions)) is not None
    ]
    compiled_limits = [_compile_limit(spec, problems) for spec in limits]
    return CompiledPolicy(
        version=version,
        grants=compiled_grants,
        rules=compiled_rules,
        limits=compiled_limits,
        problems=tuple(problems),
    )


def _pattern_problem(pattern: object, kind: str) -> str | None:
    try:
        check_pattern(pattern, kind=kind)  # type: ignore[arg-type]
    except ValueError as exc:
        return str(exc)
    return None


def _compile_grant(spec: GrantSpec, problems: list[str]) -> CompiledGrant | None:
    trouble = _pattern_problem(spec.action, "action") or _pattern_problem(spec.resource, "resource")
    expires_at = spec.expires_at
    if (
        trouble is None
        and expires_at is not None
        and (not isinstance(expires_at, datetime) or expires_at.utcoffset() is None)
    ):
        trouble = f"expires_at {expires_at!r} is not an aware datetime"
    if trouble is not None:
        problems.append(f"grant {spec.id} is ignored: {trouble}")
        return None
    return CompiledGrant(
        id=spec.id,
        matches_resource=resource_matcher(spec.resource),
        expires_at=expires_at,
        reason=grant_reason(spec.id, spec.action, spec.resource, expires_at),
    )


def _compile_rule(
    spec: RuleSpec, problems: list[str], conditions: dict[str, Any | ConditionError]
) -> tuple[str, CompiledRule] | None:
    """The rule and the action pattern to index it under; None for a dropped permit."""
    effect = spec.effect
    broken: list[str] = []
    if effect not in _EFFECTS:
        broken.append(f"effect {effect!r} is not permit, forbid or hold; it acts as a forbid")
        effect = "forbid"
    action, resource = spec.action, spec.resource
    for kind in ("action", "resource"):
        trouble = _pattern_problem(spec.action if kind == "action" else spec.resource, kind)
        if trouble is None:
            continue
        if effect == "permit":
            problems.append(f"rule {spec.id} ({spec.name}) is ignored: {trouble}")
            return None
        broken.append(f"{trouble}; the rule applies to every {kind}")
        if kind == "action":
            action = "*"
        else:
            resource = "*"
    condition = spec.condition
    if not isinstance(condition, str):
        condition = f"<not text: {condition!r}>"
    expression = _compiled(spec.condition, condition, conditions)
    if isinstance(expression, ConditionError):
        broken.append(f"condition does not compile: {expression}")
        expression = None
    label = f"rule {spec.id} ({spec.name})"
    problems.extend(f"{label}: {text}" for text in broken)
    approvals = spec.approvals
    expires_in = spec.expires_in
    if effect == "hold":
        # Fewer than one approval would let a hold pass with no human at all.
        if type(approvals) is not int or approvals < 1:
            problems.append(f"{label}: approvals {approvals!r} is not a positive integer; 1 used")
            approvals = 1
        if not isinstance(expires_in, timedelta):
            problems.append(f"{label}: expires_in {expires_in!r} is not a duration; 15 min used")
            expires_in = _DEFAULT_HOLD_EXPIRY
    rule = CompiledRule(
        id=spec.id,
        name=spec.name,
        effect=effect,
        condition=condition,
        matches_resource=resource_matcher(resource),
        expression=expression,
        broken="; ".join(broken) or None,
        approvals=approvals,
        expires_in=expires_in,
        separation_of_duties=bool(spec.separation_of_duties),
        edits_allowed=bool(spec.edits_allowed),
        approvers=spec.approvers,
        fired_reason=fired_reason(spec.id, spec.name, effect, action, resource, condition),
        needs_evaluation=expression is not None or bool(broken),
    )
    return action, rule


def _compiled(
    source: object, text: str, conditions: dict[str, Any | ConditionError]
) -> Any | ConditionError:
    if text not in conditions:
        try:
            conditions[text] = compile_condition(source)  # type: ignore[arg-type]
        except ConditionError as exc:
            conditions[text] = exc
    return conditions[text]


def _compile_limit(spec: LimitSpec, problems: list[str]) -> tuple[str, CompiledLimit]:
    action, resource = spec.action, spec.resource
    if (trouble := _pattern_problem(action, "action")) is not None:
        problems.append(f"limit {spec.id} ({spec.name}) applies to every action: {trouble}")
        action = "*"
    if (trouble := _pattern_problem(resource, "resource")) is not None:
        problems.append(f"limit {spec.id} ({spec.name}) applies to every resource: {trouble}")
        resource = "*"
    return action, CompiledLimit(id=spec.id, matches_resource=resource_matcher(resource))
