"""Reads of releases."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from oversight.agents.models import Agent
from oversight.releases.content import CONFIG_FIELDS, content_diff
from oversight.releases.models import Release


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


def release_for_session(*, agent: Agent, session_id: str = "") -> Release | None:
    """The release that applies to one of the agent's sessions: today every session gets
    the stable release. A rollout will give a sticky share of sessions (by a hash of
    ``session_id``) its candidate instead, so callers pass the session already."""
    if agent.stable_release_id is None:
        return None
    return Release.objects.filter(pk=agent.stable_release_id).first()
