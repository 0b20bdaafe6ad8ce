"""What a release holds: an agent's config, grants and rules as canonical JSON, its
digest, and the difference between two contents. Limits are deliberately absent."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from oversight.agents.models import Agent
from oversight.policy.models import Rule

CONFIG_FIELDS = ("instructions", "model_name", "model_settings", "tools")
GRANT_FIELDS = ("action", "resource", "expires_at")
# A rule's own fields (its approver_people, a many-to-many, are read apart: rule_item).
RULE_FIELDS = tuple(
    name
    for name in ("name", *Rule.MATCH_FIELDS, *Rule.HOLD_ONLY_FIELDS)
    if name != "approver_people"
)


def canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(content).encode()).hexdigest()


def grant_item(grant: Any) -> dict[str, Any]:
    """A grant as a release holds it. Its reversibility contract only when it has one, so
    the content (and digest) of a grant that says nothing is what it was before grants
    could say it."""
    expires = grant.expires_at.isoformat() if grant.expires_at else None
    item = {"action": grant.action, "resource": grant.resource, "expires_at": expires}
    if grant.reversibility:
        item["reversibility"] = grant.reversibility
    if grant.undo_action:
        item["undo"] = {
            "action": grant.undo_action,
            "params": grant.undo_params,
            "window_seconds": grant.undo_window_seconds,
        }
    return item


def rule_item(rule: Any) -> dict[str, Any]:
    found = {name: getattr(rule, name) for name in RULE_FIELDS}
    found["approver_people"] = sorted(u.get_username() for u in rule.approver_people.all())
    return found


def agent_content(agent: Agent) -> dict[str, Any]:
    """The agent's config, grants and rules as they are now, canonical (sorted)."""
    from oversight.policy.models import Grant, Rule  # policy -> agents

    grants = [grant_item(g) for g in Grant.objects.filter(agent=agent)]
    rules = Rule.objects.filter(agent=agent).prefetch_related("approver_people")
    content = {
        "config": {name: getattr(agent, name) for name in CONFIG_FIELDS},
        "grants": sorted(grants, key=lambda g: (g["action"], g["resource"])),
        "rules": sorted((rule_item(r) for r in rules), key=lambda r: r["name"]),
    }
    return json.loads(canonical(content))


def _keyed(items: list[dict[str, Any]], key: Any) -> dict[Any, dict[str, Any]]:
    return {key(item): item for item in items}


def content_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Config fields changed; grants and rules added, removed and changed (old, new)."""
    old_config, new_config = old.get("config", {}), new.get("config", {})
    config = [
        (name, old_config.get(name), new_config.get(name))
        for name in CONFIG_FIELDS
        if old_config.get(name) != new_config.get(name)
    ]
    parts: dict[str, Any] = {"config": config}
    keys = {"grants": lambda g: f"{g['action']} on {g['resource']}", "rules": lambda r: r["name"]}
    for part, key in keys.items():
        before, after = _keyed(old.get(part, []), key), _keyed(new.get(part, []), key)
        parts[part] = {
            "added": [after[k] for k in sorted(set(after) - set(before))],
            "removed": [before[k] for k in sorted(set(before) - set(after))],
            "changed": [
                (k, before[k], after[k])
                for k in sorted(set(before) & set(after))
                if before[k] != after[k]
            ],
        }
    parts["same"] = not config and not any(
        p["added"] or p["removed"] or p["changed"] for p in (parts["grants"], parts["rules"])
    )
    return parts
