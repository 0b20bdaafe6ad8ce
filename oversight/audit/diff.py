"""Readable before/after differences for people reading the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any
    kind: str  # "added", "removed" or "changed"


def _label(field: str) -> str:
    return field.replace("_", " ").capitalize()


def field_changes(before: Any, after: Any) -> list[FieldChange]:
    """Changed keys of two snapshots, in a stable order; non-dict states compare whole."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before == after:
            return []
        return [FieldChange("State", before, after, "changed")]
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if key not in before:
            changes.append(FieldChange(_label(key), None, after[key], "added"))
        elif key not in after:
            changes.append(FieldChange(_label(key), before[key], None, "removed"))
        elif before[key] != after[key]:
            changes.append(FieldChange(_label(key), before[key], after[key], "changed"))
    return changes
