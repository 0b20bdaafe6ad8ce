"""One way to turn any model instance into the JSON stored as before/after state."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

# Bookkeeping columns that change on every save and would clutter every diff.
_ALWAYS_EXCLUDED = frozenset({"updated_at"})


def _number_as_stored(text: str) -> float | int:
    """A JSON number as PostgreSQL's jsonb gives it back. jsonb keeps numbers as exact
    decimals and writes them without exponent or sign of zero, so ``1e+16`` comes back
    as the integer 10000000000000000 and ``-0.0`` as ``0.0``: taking them so here keeps
    the hash of what is written equal to the hash of what is read."""
    number = float(text)
    if number == 0:
        return 0.0
    if ("e" in text or "E" in text) and number.is_integer():
        return int(Decimal(text))
    return number


def to_json_value(value: Any) -> Any:
    """Round-trip through JSON so the value hashed is exactly the value stored (and read
    back, on either database)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder), parse_float=_number_as_stored)


def snapshot(instance: models.Model, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Concrete fields and many-to-many relations, keyed by field name.

    Related objects are recorded by their readable name (``str(obj)``), since
    the log is read by people and must stay readable after ids are reused.
    """
    skip = _ALWAYS_EXCLUDED | set(exclude)
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.primary_key or field.name in skip:
            continue
        if field.is_relation:
            related = getattr(instance, field.name)
            data[field.name] = None if related is None else str(related)
        else:
            data[field.name] = field.value_from_object(instance)
    for field in instance._meta.many_to_many:
        if field.name not in skip and instance.pk is not None:
            data[field.name] = sorted(str(obj) for obj in getattr(instance, field.name).all())
    return to_json_value(data)
