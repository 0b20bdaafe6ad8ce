"""Readable before/after differences for people reading the log."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.utils import dateformat, timezone
from django.utils.dateparse import parse_datetime

from oversight.agents.constants import APPROVE, CHANGE, VIEW

EMPTY = "—"
# The object permissions an access change records under "access of <username>"
# (agents/services.py), shown as words: ["approve_agent", "view_agent"] reads "approve, view".
_ACCESS_KEY = "access of "
_PERMISSION_WORDS = {VIEW: "view", CHANGE: "change", APPROVE: "approve"}
# A time as snapshots store it (ISO 8601, with its offset): shown as the log's headers show
# times, not as the raw text.
_STORED_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str
    kind: str  # "added", "removed" or "changed"


def _label(field: str) -> str:
    return field.replace("_", " ").capitalize()


def display(value: Any) -> str:
    """A value as a person reads it: lists joined, nothing as a dash, no Python reprs."""
    if value is None or value == [] or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(display(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, str) and _STORED_TIME.fullmatch(value):
        moment = parse_datetime(value)
        if moment is not None:
            return dateformat.format(timezone.localtime(moment), "j M Y, H:i:s T")
    return str(value)


def _shown(key: str, value: Any) -> str:
    if key.startswith(_ACCESS_KEY) and isinstance(value, list):
        value = [_PERMISSION_WORDS.get(item, item) for item in value]
    return display(value)


def field_changes(before: Any, after: Any) -> list[FieldChange]:
    """Changed keys of two snapshots in a stable order. A missing side counts as empty,
    so a creation lists every field as added."""
    if before is None and isinstance(after, dict):
        before = {}
    if after is None and isinstance(before, dict):
        after = {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before == after:
            return []
        return [FieldChange("State", display(before), display(after), "changed")]
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if key not in before:
            changes.append(FieldChange(_label(key), EMPTY, _shown(key, after[key]), "added"))
        elif key not in after:
            changes.append(FieldChange(_label(key), _shown(key, before[key]), EMPTY, "removed"))
        elif before[key] != after[key]:
            changes.append(
                FieldChange(
                    _label(key), _shown(key, before[key]), _shown(key, after[key]), "changed"
                )
            )
    return changes
