"""JSON from agents that the database and the policy engine can hold.

PostgreSQL's jsonb refuses the NUL character, UTF-8 cannot encode lone UTF-16 surrogates
(JSON allows both as escapes), and the CEL runtime converts nested values recursively in
native code, so very deep nesting is refused before it gets there.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 32


class UnsafeJsonError(ValueError):
    pass


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise UnsafeJsonError("must not contain the NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeJsonError("must be valid Unicode (no lone surrogates)") from None


def check_json(value: Any, depth: int = 0) -> Any:
    """Return ``value`` unchanged, or raise UnsafeJsonError saying what is wrong."""
    if depth > MAX_DEPTH:
        raise UnsafeJsonError(f"must not nest deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(str(key))
            check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, depth + 1)
    return value
