"""Values as people read them: durations, moments, JSON documents.

The template filters in oversight/core/templatetags/display.py are these functions;
Python code that renders the same values (selectors, notifications) calls them here.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.timesince import timesince

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def person_name(user: Any) -> str:
    """How a person is named on pages and in answers: the full name, else the username."""
    return user.get_full_name() or user.get_username()


def duration(seconds: int | float | None) -> str:
    """900 -> "15 minutes", 5400 -> "1 hour 30 minutes", 86400 -> "1 day": the two
    largest units, the rest dropped (a policy's 90061 s reads "1 day 1 hour")."""
    if seconds is None:
        return ""
    left = int(seconds)
    if left <= 0:
        return "0 seconds"
    parts: list[str] = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
        if len(parts) == 2 or (parts and not left):
            break
    return " ".join(parts)


def expires_in(when: datetime | None, now: datetime | None = None) -> str:
    """A held action's deadline as its countdown reads, "expires in 14m 58s", the same
    words as the ticking countdown (static/js/oversight.js) so the two never mix."""
    if when is None:
        return ""
    seconds = int((when - (now or timezone.now())).total_seconds())
    if seconds <= 0:
        return "expired"
    minutes, hours = seconds // 60, seconds // 3600
    if hours:
        return f"expires in {hours}h {minutes % 60}m"
    if minutes:
        return f"expires in {minutes}m {seconds % 60}s"
    return f"expires in {seconds}s"


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """ "just now" within the last minute (and for a clock a little ahead), otherwise
    Django's "3 hours, 4 minutes ago"."""
    if when is None:
        return ""
    now = now or timezone.now()
    if (now - when).total_seconds() < 60:
        return "just now"
    return f"{timesince(when, now)} ago"


def plain_number(value: Decimal | int | float | str | None, *, grouped: bool = False) -> str:
    """A sum as people write it: "20000.0000" reads "20000", "12.50" reads "12.5"; never
    an exponent (``Decimal.normalize`` alone turns 20000 into "2E+4"); ``grouped``, with
    thousands separated ("23,548"), for a sum read rather than typed back. Anything that
    is not a number is shown as it is; None is empty."""
    if value is None:
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    return format(number.normalize(), ",f" if grouped else "f")


def pretty_json(value: Any) -> str:
    """A JSON document indented, keys sorted, non-ASCII kept; "" for None."""
    if value is None:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


PARAMS_SHOWN = 12  # params a list row shows, each value up to VALUE_SHOWN characters
VALUE_SHOWN = 300


def params_parts(params: Any, limit: int = PARAMS_SHOWN) -> list[str]:
    """Params as `key: value` pieces (values as compact JSON, each cut at VALUE_SHOWN
    characters), at most `limit` of them: what a list row shows of what is asked, piece
    by piece, so that a row wraps whole pieces rather than cutting a value short
    (``params_cut`` says whether anything was left out)."""
    if not isinstance(params, dict):
        return [] if params is None else [_cut(json.dumps(params, default=str))]
    parts = [f"{key}: {_cut(_compact(params[key]))}" for key in sorted(params)[:limit]]
    if len(params) > limit:
        parts.append(f"and {len(params) - limit} more")
    return parts


def params_cut(params: Any, limit: int = PARAMS_SHOWN) -> bool:
    """Whether ``params_parts`` leaves any of these params out or cuts a value: a row
    showing them must not approve them in one click."""
    if not isinstance(params, dict):
        return params is not None and len(json.dumps(params, default=str)) > VALUE_SHOWN
    return len(params) > limit or any(len(_compact(v)) > VALUE_SHOWN for v in params.values())


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))


def _cut(text: str) -> str:
    return text if len(text) <= VALUE_SHOWN else text[: VALUE_SHOWN - 1] + "…"
