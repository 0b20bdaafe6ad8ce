"""Canonical hashes of what an agent asked for."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def action_hash(action: str, resource: str, params: Any) -> str:
    """What an approval is bound to: exactly this action, resource and params."""
    return canonical_hash({"action": action, "resource": resource, "params": params})
