"""Check patterns and conditions with the engine when they are saved, naming the field."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from oversight.policy.engine import ConditionError, check_condition, check_pattern


def validate_patterns(obj: Any) -> None:
    errors: dict[str, str] = {}
    for field, kind in (("action", "action"), ("resource", "resource")):
        try:
            check_pattern(getattr(obj, field), kind=kind)
        except ValueError as exc:
            errors[field] = str(exc)
    if errors:
        raise ValidationError(errors)


def validate_condition(source: str) -> None:
    if not source.strip():
        return
    try:
        check_condition(source)
    except ConditionError as exc:
        raise ValidationError({"condition": str(exc)}) from None
