"""Reads of releases."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Count, F, QuerySet
from django.shortcuts import get_object_or_404

from oversight.agents.models import Agent
from oversight.gateway.models import Action
from oversight.releases.assignment import assign
from oversight.releases.content import CONFIG_FIELDS, agent_content, content_diff, digest
from oversight.releases.models import Release, Rollout, Stage


def release_list(*, agent: Agent) -> QuerySet[Release]:
    return Release.objects.filter(agent=agent).select_related("author").order_by("-version")


def release_get(*, agent: Agent, version: int) -> Release:
    return get_object_or_404(
        Release.objects.select_related("author", "parent"), agent=agent, version=version
    )


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)


def release_compare(*, old: Release, new: Release) -> dict[str, Any]:
    """What changed from ``old`` to ``new``, ready to show side by side."""
    diff = content_diff(old.content, new.content)
    diff["config"] = [(name, _shown(a), _shown(b)) for name, a, b in diff["config"]]
    for part in ("grants", "rules"):
        diff[part]["changed"] = [(key, _fields(a, b)) for key, a, b in diff[part]["changed"]]
    return diff


def _fields(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """One changed grant or rule, field by field: the changed fields first, marked."""
    rows = [
        (name, _shown(old.get(name)), _shown(new.get(name)), old.get(name) != new.get(name))
        for name in sorted(set(old) | set(new))
    ]
    return sorted(rows, key=lambda row: not row[3])


def config_rows(release: Release) -> list[tuple[str, str]]:
    config = release.content.get("config", {})
    return [(name, _shown(config.get(name, ""))) for name in CONFIG_FIELDS]


def release_for_session(*, agent: Agent, environment: str, session_id: str = "") -> Release | None:
    """The release that applies to one of the agent's sessions: the one that decides its
    requests (releases/assignment.py; sticky for the session in a canary)."""
    found = assign(agent, environment=environment, session_id=session_id)
    if found.release_id is None:
        return None
    return Release.objects.filter(pk=found.release_id).first()


def rollouts_of(*, release: Release) -> QuerySet[Rollout]:
    return Rollout.objects.filter(release=release).select_related(
        "created_by", "approved_by", "baseline"
    )


def decisions_in_stage(*, rollout: Rollout) -> int:
    """How many decisions the candidate made (or, in shadow, was evaluated for) in the
    current stage."""
    since = rollout.stage_started_at
    if since is None:
        return 0
    found = Action.objects.filter(agent_id=rollout.agent_id, created_at__gte=since)
    if rollout.stage == Stage.SHADOW:
        return found.filter(shadow_version=rollout.release.version).count()
    return found.filter(release_version=rollout.release.version).count()


def shadow_differences(*, agent: Agent, version: int, examples: int = 10) -> dict[str, Any]:
    """Where the candidate ``version``, evaluated in shadow, disagreed with what decided:
    counts by (decided, would have decided), and the latest examples."""
    shadowed = Action.objects.filter(agent=agent, shadow_version=version)
    differing = shadowed.exclude(shadow_status=F("decision"))
    counts = (
        differing.values("decision", "shadow_status")
        .annotate(count=Count("pk"))
        .order_by("-count", "decision")
    )
    return {
        "evaluated": shadowed.count(),
        "differing": sum(row["count"] for row in counts),
        "transitions": list(counts),
        "examples": list(differing.order_by("-created_at")[:examples]),
    }


def working_copy(*, agent: Agent) -> dict[str, Any] | None:
    """When the agent's grants, rules and config (its newest release) are not what
    decides: the newest release, the stable version, and the rollout it is in, if any."""
    from oversight.releases.rollouts import live_rollout  # rollouts -> selectors

    newest = Release.objects.filter(agent=agent).order_by("-version").first()
    if newest is None or newest.pk == agent.stable_release_id:
        return None
    stable = Release.objects.filter(pk=agent.stable_release_id).first()
    if stable is not None and digest(agent_content(agent)) == stable.digest:
        return None  # back to what is in force (a candidate was rolled back)
    live = live_rollout(agent)
    return {
        "newest": newest,
        "stable_version": agent.stable_version,
        "rollout": live if live is not None and live.release_id == newest.pk else None,
    }
