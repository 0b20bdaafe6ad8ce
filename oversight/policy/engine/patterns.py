"""Action and resource patterns: validation, matching, and an index by action.

Action patterns are dot-separated segments of ``[a-z0-9_-]``: exact
(``crm.contact.update``), a trailing ``.*`` prefix wildcard (``crm.contact.*`` matches
``crm.contact.update`` and ``crm.contact.note.add`` but not ``crm.contact`` itself), or ``*``.
Resource patterns are globs whose only wildcard, ``*``, matches any run of characters,
``/`` and ``:`` included. Matching is case-sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Generic, Literal, TypeVar

MAX_PATTERN_LENGTH = 512

_SEGMENT = r"[a-z0-9_-]+"
_ACTION_NAME = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_ACTION_PATTERN = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*(?:\.\*)?")
# Glob characters other than `*` would look like they work (fnmatch habits) and silently
# match literally, so they are refused rather than guessed at.
_RESOURCE_FORBIDDEN = re.compile(r"[\s?\[\]\x00-\x1f\x7f]")

# A resource an agent names (not a pattern): anything but whitespace and NUL, which the
# API's document spells out (gateway/schemas.py, RESOURCE).
_NOT_IN_RESOURCE = re.compile(r"[\s\x00]")

ResourceMatcher = Callable[[str], bool]
T = TypeVar("T")


def is_action_name(action: str) -> bool:
    """Whether `action` is a concrete action name (no wildcard), e.g. ``crm.contact.update``."""
    return isinstance(action, str) and _ACTION_NAME.fullmatch(action) is not None


def is_resource(resource: str) -> bool:
    """Whether `resource` names a resource: not empty, no whitespace, no NUL."""
    return isinstance(resource, str) and bool(resource) and not _NOT_IN_RESOURCE.search(resource)


def check_pattern(pattern: str, *, kind: Literal["action", "resource"]) -> None:
    """Raise ValueError, with a sentence saying what is wrong, if `pattern` is not valid."""
    if kind not in ("action", "resource"):
        raise ValueError(f"kind must be 'action' or 'resource', not {kind!r}")
    if not isinstance(pattern, str):
        raise ValueError(f"{kind} pattern must be text, not {type(pattern).__name__}")
    if pattern == "":
        raise ValueError(f"{kind} pattern is empty; use * to match everything")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"{kind} pattern is longer than {MAX_PATTERN_LENGTH} characters")
    if any(ch.isspace() for ch in pattern):
        raise ValueError(f"{kind} pattern {pattern!r} contains whitespace")
    if "**" in pattern:
        raise ValueError(
            f"{kind} pattern {pattern!r} contains **; a single * already matches any run "
            "of characters" + (" (or use a trailing .* for a prefix)" if kind == "action" else "")
        )
    if kind == "action":
        _check_action_pattern(pattern)
    else:
        bad = _RESOURCE_FORBIDDEN.search(pattern)
        if bad is not None:
            raise ValueError(
                f"resource pattern {pattern!r} contains {bad.group()!r}; only * is a wildcard"
            )


def _check_action_pattern(pattern: str) -> None:
    if pattern == "*" or _ACTION_PATTERN.fullmatch(pattern):
        return
    if "*" in pattern:
        raise ValueError(
            f"action pattern {pattern!r} has * in the wrong place; * is either the whole "
            "pattern or a last segment after a dot, as in crm.contact.*"
        )
    if pattern != pattern.lower():
        raise ValueError(f"action pattern {pattern!r} must be lowercase")
    if pattern.startswith(".") or pattern.endswith(".") or ".." in pattern:
        raise ValueError(f"action pattern {pattern!r} has an empty segment")
    bad = next((ch for ch in pattern if not (ch == "." or re.fullmatch(_SEGMENT, ch))), "")
    raise ValueError(f"action pattern {pattern!r} contains {bad!r}; segments use a-z, 0-9, _ and -")


def resource_matcher(pattern: str) -> ResourceMatcher | None:
    """Compile a (valid) resource pattern; None means it matches every resource.

    The common shapes get a plain string method rather than a regex: it is several
    times faster and this runs for every candidate rule on every decision.
    """
    if pattern == "*":
        return None
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern.__eq__
    if len(parts) == 2 and parts[1] == "":
        return _startswith(parts[0])
    if len(parts) == 2 and parts[0] == "":
        return _endswith(parts[1])
    regex = re.compile(".*".join(re.escape(part) for part in parts), re.DOTALL)
    return lambda resource: regex.fullmatch(resource) is not None


def _startswith(prefix: str) -> ResourceMatcher:
    return lambda resource: resource.startswith(prefix)


def _endswith(suffix: str) -> ResourceMatcher:
    return lambda resource: resource.endswith(suffix)


class ActionIndex(Generic[T]):
    """Items keyed by (valid) action pattern, so a lookup touches only the items that match.

    Exact patterns live in a dict, ``a.b.*`` patterns in a dict keyed by the prefix
    ``a.b.``, and ``*`` in a list: a lookup costs one dict probe per dot in the action,
    however many items there are.
    """

    __slots__ = ("_everything", "_exact", "_prefixes")

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._exact: dict[str, list[T]] = {}
        self._prefixes: dict[str, list[T]] = {}
        self._everything: list[T] = []
        for pattern, item in entries:
            if pattern == "*":
                self._everything.append(item)
            elif pattern.endswith(".*"):
                self._prefixes.setdefault(pattern[:-1], []).append(item)
            else:
                self._exact.setdefault(pattern, []).append(item)

    def lookup(self, action: str) -> list[T]:
        """The items whose action pattern matches `action`."""
        found = list(self._everything)
        found += self._exact.get(action, ())
        if self._prefixes:
            dot = action.find(".")
            while dot != -1:
                found += self._prefixes.get(action[: dot + 1], ())
                dot = action.find(".", dot + 1)
        return found
