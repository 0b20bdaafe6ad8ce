"""Moments a person or a command names: a duration back from now, or a date or datetime."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from oversight.policy.manifest.durations import parse_duration

_RELATIVE = re.compile(r"^\d+\s*[smhd]$")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # nothing Oversight recorded is older
_EARLIEST_WORDS = "a moment from 1970 on"


class MomentError(ValueError):
    """Not a moment this understands; the message says what is."""


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """A window's bound: a duration back from now (``7d``, ``24h``, ``30m``, ``90s``) or an
    ISO date or datetime (UTC unless it says otherwise)."""
    now = now or timezone.now()
    text = (text or "").strip()
    if _RELATIVE.match(text):
        try:
            return _not_too_early(now - timedelta(seconds=parse_duration(text)), text)
        except OverflowError:  # more days back than a date can hold
            raise MomentError(f"{text!r} is too far back: {_EARLIEST_WORDS}") from None
        except ValueError as exc:
            raise MomentError(str(exc)) from None
    try:
        moment = parse_datetime(text) or (
            datetime.fromisoformat(text) if re.match(r"^\d{4}-\d\d-\d\d$", text) else None
        )
    except ValueError:
        moment = None
    if moment is None:
        raise MomentError(
            f"{text!r} is neither a duration like 7d, 24h or 30m nor an ISO date or datetime "
            "like 2026-11-25 or 2026-11-25T09:00:00Z"
        )
    moment = moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)
    return _not_too_early(moment, text)


def _not_too_early(moment: datetime, text: str) -> datetime:
    if moment < EARLIEST:
        raise MomentError(f"{text!r} is too far back: {_EARLIEST_WORDS}")
    return moment
