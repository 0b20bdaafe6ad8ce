"""Release 1 of every existing agent, from its current config, grants and rules, made its
stable release. The same content as releases/content.py builds, on the historical models."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import migrations

# As in oversight/releases/content.py then (a migration keeps its own copy).
CONFIG_FIELDS = ("instructions", "model_name", "model_settings", "tools")
RULE_FIELDS = (
    "name",
    "effect",
    "action",
    "resource",
    "condition",
    "approvals",
    "expires_in_seconds",
    "separation_of_duties",
    "edits_allowed",
    "approvers",
    "approver_role",
)


def canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(content).encode()).hexdigest()


def _content(apps: Any, db: str, agent: Any) -> dict[str, Any]:
    grant_model = apps.get_model("policy", "Grant")
    rule_model = apps.get_model("policy", "Rule")
    grants = [
        {
            "action": g.action,
            "resource": g.resource,
            "expires_at": g.expires_at.isoformat() if g.expires_at else None,
        }
        for g in grant_model.objects.using(db).filter(agent_id=agent.pk)
    ]
    rules = []
    for rule in rule_model.objects.using(db).filter(agent_id=agent.pk):
        item = {name: getattr(rule, name) for name in RULE_FIELDS}
        item["approver_people"] = sorted(u.username for u in rule.approver_people.all())
        rules.append(item)
    content = {
        "config": {name: getattr(agent, name) for name in CONFIG_FIELDS},
        "grants": sorted(grants, key=lambda g: (g["action"], g["resource"])),
        "rules": sorted(rules, key=lambda r: r["name"]),
    }
    return json.loads(canonical(content))


def forwards(apps: Any, schema_editor: Any) -> None:
    agent_model = apps.get_model("agents", "Agent")
    release_model = apps.get_model("releases", "Release")
    db = schema_editor.connection.alias
    for agent in agent_model.objects.using(db).filter(stable_release__isnull=True):
        content = _content(apps, db, agent)
        release = release_model.objects.using(db).create(
            agent_id=agent.pk,
            version=1,
            digest=digest(content),
            content=content,
            notes="the agent as it was when releases began",
        )
        agent_model.objects.using(db).filter(pk=agent.pk).update(stable_release=release, stable_version=1)


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0001_initial"),
        ("agents", "0006_stable_release"),
        ("policy", "0005_rule_approvers"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
