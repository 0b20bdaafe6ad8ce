"""Check patterns and conditions with the engine when they are saved, naming the field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from oversight.policy.constants import Reversibility
from oversight.policy.engine import ConditionError, check_condition, check_pattern, is_action_name
from oversight.policy.engine.compensation import check_undo_params
from oversight.policy.models import Grant, Rule
from oversight.policy.param_evidence import param_evidence


def validate_patterns(obj: Any) -> None:
    errors: dict[str, str] = {}
    for field, kind in (("action", "action"), ("resource", "resource")):
        try:
            check_pattern(getattr(obj, field), kind=kind)
        except ValueError as exc:
            errors[field] = str(exc)
    if errors:
        raise ValidationError(errors)


def validate_condition(rule: Rule) -> None:
    """The rule's condition compiles, is a boolean, and can work with what is known of the
    parameters of the actions it applies to (param_evidence.py)."""
    if not rule.condition.strip():
        return
    evidence = param_evidence(agent=rule.agent, action=rule.action, resource=rule.resource)
    try:
        check_condition(rule.condition, param_types=evidence.types)
    except ConditionError as exc:
        message = f"{exc}. {evidence.sources()}" if exc.typed else str(exc)
        raise ValidationError({"condition": message}) from None


def validate_contract(grant: Grant) -> None:
    """The grant's reversibility contract: said when its team requires it; a reversible
    grant's undo action is an action name and its params compile."""
    if grant.agent.team.require_reversibility and not grant.reversibility:
        raise ValidationError(
            {"reversibility": "This team requires every grant to say whether it can be undone."}
        )
    if grant.reversibility != Reversibility.REVERSIBLE:
        return
    if not is_action_name(grant.undo_action):
        raise ValidationError(
            {"undo_action": f"{grant.undo_action!r} is not an action name (e.g. payments.refund)."}
        )
    try:
        check_undo_params(grant.undo_params)
    except ConditionError as exc:
        raise ValidationError({"undo_params": str(exc)}) from None


PASSED_EXPIRY = "This moment has passed: a grant expires in the future."


def expiry_passed(expires: dt.datetime | None, before: dt.datetime | None = None) -> bool:
    """Whether a grant's expiry, as a person sets it (the page, a manifest), has passed.
    One it already had may stay; the services take any (retiring expires grants now, a
    rollback restores what a release had)."""
    return expires is not None and expires != before and expires <= timezone.now()
