"""Make a release's content current again, through the services that own each part: the
agent's config through agents.services, grants and rules through policy.services (so
every change is validated, audited and bumps the policy version)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model

from oversight.agents.models import Agent
from oversight.agents.services import agent_update
from oversight.audit.actors import Actor
from oversight.policy.models import Grant, Rule
from oversight.policy.services import (
    policy_object_create,
    policy_object_delete,
    policy_object_update,
)
from oversight.releases.content import CONFIG_FIELDS, RULE_FIELDS


def _grant_fields(item: dict[str, Any]) -> dict[str, Any]:
    expires = item.get("expires_at")
    undo = item.get("undo") or {}
    return {
        "expires_at": dt.datetime.fromisoformat(expires) if expires else None,
        "reversibility": item.get("reversibility", ""),
        "undo_action": undo.get("action", ""),
        "undo_params": undo.get("params") or {},
        "undo_window_seconds": undo.get("window_seconds"),
    }


def _rule_fields(item: dict[str, Any]) -> dict[str, Any]:
    fields = {name: item[name] for name in RULE_FIELDS if name in item}
    names = item.get("approver_people") or []
    fields["approver_people"] = list(get_user_model().objects.filter(username__in=names))
    return fields


def _grants(actor: Actor, agent: Agent, wanted: list[dict[str, Any]]) -> None:
    want = {(g["action"], g["resource"]): g for g in wanted}
    have = {(g.action, g.resource): g for g in Grant.objects.filter(agent=agent)}
    for key in sorted(set(have) - set(want)):
        policy_object_delete(actor=actor, obj=have[key])
    for key in sorted(want):
        fields = _grant_fields(want[key])
        if key in have:
            if any(getattr(have[key], name) != value for name, value in fields.items()):
                policy_object_update(actor=actor, obj=have[key], **fields)
            continue
        grant = Grant(agent=agent, action=key[0], resource=key[1], **fields)
        policy_object_create(actor=actor, obj=grant)


def _rules(actor: Actor, agent: Agent, wanted: list[dict[str, Any]]) -> None:
    want = {r["name"]: r for r in wanted}
    have = {r.name: r for r in Rule.objects.filter(agent=agent)}
    for name in sorted(set(have) - set(want)):
        policy_object_delete(actor=actor, obj=have[name])
    for name in sorted(want):
        fields = _rule_fields(want[name])
        if name in have:
            policy_object_update(actor=actor, obj=have[name], **fields)
            continue
        people = fields.pop("approver_people")
        policy_object_create(actor=actor, obj=Rule(agent=agent, **fields), approver_people=people)


def content_restore(*, actor: Actor, agent: Agent, content: dict[str, Any]) -> None:
    config = content.get("config", {})
    changes = {name: config[name] for name in CONFIG_FIELDS if name in config}
    agent_update(actor=actor, agent=agent, **changes)
    _grants(actor, agent, content.get("grants", []))
    _rules(actor, agent, content.get("rules", []))
