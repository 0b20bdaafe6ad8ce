"""Durations written as 30s, 15m, 1h, 2d."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^(\d+)\s*([smhd])$")


def parse_duration(text: object) -> int:
    """Seconds in a duration like "15m"; a bare integer counts as seconds."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return text
    match = _PATTERN.match(str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h or 2d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"
