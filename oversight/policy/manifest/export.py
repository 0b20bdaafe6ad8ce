"""Write the current teams, agents and policies in the manifest format."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import yaml

from oversight.accounts.models import Team
from oversight.agents.constants import AgentStatus
from oversight.agents.models import Agent
from oversight.policy.manifest.durations import format_duration
from oversight.policy.manifest.spec import CONFIG_KEYS
from oversight.policy.models import Limit


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _limit(lim: Limit) -> dict[str, Any]:
    out: dict[str, Any] = {"name": lim.name, "action": lim.action}
    if lim.resource != "*":
        out["resource"] = lim.resource
    out["window"] = format_duration(lim.window_seconds)
    if lim.max_count is not None:
        out["max_count"] = lim.max_count
    if lim.max_sum is not None:
        out["max_sum"] = {"param": lim.sum_param, "value": _number(lim.max_sum)}
    out["on_exceed"] = lim.on_exceed
    return out


def _in_force(agent: Agent) -> dict[str, Any]:
    """What decides for the agent: its stable release's content (the grant and rule rows
    may hold a change not in force yet, waiting for its rollout)."""
    from oversight.releases.content import agent_content  # releases -> policy

    release = agent.stable_release
    return release.content if release is not None else agent_content(agent)


def _config(config: dict[str, Any]) -> dict[str, Any]:
    """The agent's config as the manifest names it, the fields that are set."""
    out = {key: config.get(field) for key, field in CONFIG_KEYS.items()}
    return {key: value for key, value in out.items() if value}


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    item = {"name": rule["name"], "effect": rule["effect"], "action": rule["action"]}
    if rule["resource"] != "*":
        item["resource"] = rule["resource"]
    if rule["condition"]:
        item["when"] = rule["condition"]
    if rule["effect"] == "hold":
        item["approvals"] = rule["approvals"]
        item["expires_in"] = format_duration(rule["expires_in_seconds"])
        if rule["separation_of_duties"]:
            item["separation_of_duties"] = True
        if not rule["edits_allowed"]:
            item["edits_allowed"] = False
        if rule["approvers"] == "team_reviewers":
            item["approvers"] = "team_reviewers"
        elif rule["approvers"] == "role":
            item["approvers"] = {"role": rule["approver_role"]}
        elif rule["approvers"] == "people":
            item["approvers"] = {"people": sorted(rule["approver_people"])}
    return item


def _agent(agent: Agent) -> dict[str, Any]:
    content = _in_force(agent)
    out: dict[str, Any] = {
        "slug": agent.slug,
        "name": agent.name,
        "owner": agent.owner.get_username(),
        "team": agent.team.name,
        "purpose": agent.purpose,
        "review_every_days": agent.review_interval_days,
        "environments": list(agent.environments),
        "risk_tier": agent.risk_tier,
        **_config(content.get("config", {})),
        "grants": [],
        "rules": [_rule(rule) for rule in sorted(content["rules"], key=lambda r: r["name"])],
        "limits": [_limit(lim) for lim in agent.limits.order_by("name")],
    }
    for grant in sorted(content["grants"], key=lambda g: (g["action"], g["resource"])):
        item: dict[str, Any] = {"action": grant["action"], "resource": grant["resource"]}
        if grant["expires_at"]:
            item["expires_at"] = grant["expires_at"]
        if grant.get("reversibility"):
            item["reversibility"] = grant["reversibility"]
        if grant.get("undo"):
            undo = grant["undo"]
            item["undo"] = {
                "action": undo["action"],
                "params": undo["params"],
                "window": format_duration(undo["window_seconds"]),
            }
        out["grants"].append(item)
    return out


def manifest_export() -> str:
    teams = []
    for team in Team.objects.order_by("name"):
        item: dict[str, Any] = {"name": team.name}
        if team.description:
            item["description"] = team.description
        limits = [_limit(lim) for lim in Limit.objects.filter(team=team).order_by("name")]
        if limits:
            item["limits"] = limits
        # Everyone listed, active or not: applying the export back changes nothing.
        reviewers = [u.get_username() for u in team.reviewers]
        if reviewers:
            item["reviewers"] = reviewers
        teams.append(item)
    agents = (
        Agent.objects.exclude(status=AgentStatus.RETIRED)
        .select_related("owner", "team", "stable_release")
        .order_by("slug")
    )
    document: dict[str, Any] = {"teams": teams, "agents": [_agent(a) for a in agents]}
    everyone = Limit.objects.filter(agent__isnull=True, team__isnull=True).order_by("name")
    if everyone:
        document["limits"] = [_limit(lim) for lim in everyone]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
