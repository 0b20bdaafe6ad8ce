"""Reads of releases."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format

from oversight.agents.constants import Environment
from oversight.agents.models import Agent, AgentToken
from oversight.gateway.models import Action
from oversight.lib import humanize
from oversight.policy.constants import Approvers, Reversibility
from oversight.policy.models import Rule
from oversight.releases.assignment import assign
from oversight.releases.content import (
    CONFIG_FIELDS,
    GRANT_FIELDS,
    RULE_FIELDS,
    agent_content,
    content_diff,
    digest,
)
from oversight.releases.models import ROLLBACK_NOTES, Release, Rollout, Stage


def release_list(*, agent: Agent) -> QuerySet[Release]:
    return Release.objects.filter(agent=agent).select_related("author").order_by("-version")


def release_history(*, agent: Agent) -> QuerySet[Release]:
    """The agent's releases, newest first, each with what became of it: ``rollout_state``,
    its last rollout's (rolled back, cancelled...; None if it never had one); and, when a
    rollback replaced it while it was in force, ``rolled_back_by`` (that rollback's own
    version) and ``rollback_notes`` ("rollback to v3")."""
    rollouts = Rollout.objects.filter(release=OuterRef("pk")).order_by("-pk")
    rollbacks = Release.objects.filter(
        parent=OuterRef("pk"), notes__startswith=ROLLBACK_NOTES
    ).order_by("version")
    return release_list(agent=agent).annotate(
        rollout_state=Subquery(rollouts.values("state")[:1]),
        rolled_back_by=Subquery(rollbacks.values("version")[:1]),
        rollback_notes=Subquery(rollbacks.values("notes")[:1]),
    )


def release_fate(*, agent: Agent, release: Release) -> Release | None:
    """``release`` as ``release_history`` annotates it, if a rollback replaced it or its
    last rollout was rolled back or cancelled; else None."""
    fate = release_history(agent=agent).filter(pk=release.pk).first()
    ended = ("rolled_back", "cancelled")
    if fate is None or not (fate.rolled_back_by or fate.rollout_state in ended):
        return None
    return fate


def same_content_versions(*, agent_id: int, version: int) -> QuerySet[Release]:
    """The versions (a `values("version")` query) of the agent's releases with `version`'s
    content, itself included: a rollback makes a new version of an earlier release, which
    decides as it did, so their decisions are one history."""
    digest = Release.objects.filter(agent_id=agent_id, version=version).values("digest")
    return Release.objects.filter(agent_id=agent_id, digest__in=digest).values("version")


def release_was_stable(*, release: Release) -> bool:
    """Whether ``release``'s content was ever in force: it, or a release of the same
    content (a rollback's), was promoted (each promotion is audited). A team that requires
    approved, staged rollouts lets one click go back to such content only."""
    from oversight.audit import verbs
    from oversight.audit.models import AuditEvent

    promoted = AuditEvent.objects.filter(
        verb=verbs.RELEASE_PROMOTED, agent_id=release.agent_id, target_type="releases.release"
    ).values_list("target_id", flat=True)
    ids = [int(pk) for pk in promoted if pk.isdigit()]
    same = Release.objects.filter(agent_id=release.agent_id, digest=release.digest)
    return same.filter(pk__in=ids).exists()


def release_get(*, agent: Agent, version: int) -> Release:
    return get_object_or_404(
        Release.objects.select_related("author", "parent"), agent=agent, version=version
    )


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)


def _readable(name: str, value: Any) -> str:
    """One field of a grant or rule as people read it (not as Python prints it)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "" or value == []:
        return {"expires_at": "never", "condition": "always"}.get(name, "—")
    if name == "expires_in_seconds":
        return humanize.duration(value)
    if name == "expires_at" and isinstance(value, str):  # kept as ISO 8601 in the content
        moment = parse_datetime(value)
        if moment is not None:  # as the policy page shows it
            return date_format(timezone.localtime(moment), "j M Y H:i")
    if name == "approvers":
        return Approvers(value).label if value in Approvers.values else str(value)
    if name == "reversibility":
        return Reversibility(value).label if value in Reversibility.values else str(value)
    if name == "undo" and isinstance(value, dict):
        within = humanize.duration(value.get("window_seconds"))
        params = json.dumps(value.get("params") or {}, sort_keys=True)
        return f"{value.get('action')} with params {params}" + (
            f", within {within}" if within else ""
        )
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return _shown(value)


def item_fields(item: dict[str, Any]) -> list[tuple[str, str]]:
    """A grant or rule of a release, field by field, readable, in the order its form has
    them; a rule's hold-only fields (approvals, hold time, who approves) for a hold rule
    only, where they mean something."""
    order = [*GRANT_FIELDS, "reversibility", "undo", *RULE_FIELDS, "approver_people"]
    hold = item.get("effect", "hold") == "hold"
    return [
        (name, _readable(name, item[name]))
        for name in sorted(item, key=lambda n: order.index(n) if n in order else len(order))
        if hold or name not in Rule.HOLD_ONLY_FIELDS
    ]


# The fields a release's page shows in columns of their own; the rest are its details.
_COLUMNS = ("name", "effect", "action", "resource", "expires_at", "condition")


def release_items(release: Release) -> dict[str, list[dict[str, Any]]]:
    """A release's grants and rules for its page, each with its readable fields: those
    with a column of their own by name, the others (undo; approvals, hold time, who
    approves...) as ``details``."""
    found: dict[str, list[dict[str, Any]]] = {}
    for part in ("grants", "rules"):
        found[part] = []
        for item in release.content.get(part, []):
            fields = item_fields(item)
            row: dict[str, Any] = {n: v for n, v in fields if n in _COLUMNS}
            row["details"] = [(n, v) for n, v in fields if n not in _COLUMNS]
            found[part].append(row)
    return found


def release_compare(*, old: Release, new: Release) -> dict[str, Any]:
    """What changed from ``old`` to ``new``, ready to show side by side."""
    diff = content_diff(old.content, new.content)
    diff["config"] = [(name, _shown(a), _shown(b)) for name, a, b in diff["config"]]
    for part in ("grants", "rules"):
        diff[part]["changed"] = [(key, _fields(a, b)) for key, a, b in diff[part]["changed"]]
        for side in ("added", "removed"):
            diff[part][side] = [item_fields(item) for item in diff[part][side]]
    return diff


def _fields(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """One changed grant or rule, field by field: the changed fields first, marked."""
    rows = [
        (
            name,
            _readable(name, old.get(name)),
            _readable(name, new.get(name)),
            old.get(name) != new.get(name),
        )
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


def staging_untokened(*, rollout: Rollout | None) -> bool:
    """A rollout at staging whose agent has no active staging token: nothing can decide
    under its candidate, so the stage's count never moves."""
    if rollout is None or rollout.stage != Stage.STAGING:
        return False
    tokens = AgentToken.objects.filter(agent_id=rollout.agent_id, environment=Environment.STAGING)
    return not tokens.filter(revoked_at__isnull=True).exists()


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


def release_saved_words(*, agent_id: int, working_before: int | None) -> str:
    """What a save made of the agent's release, for the message after it: "" when it cut
    none (a change of who answers for the agent, or nothing new); else the new release and
    whether it is in force or waits (its team requires an approved, staged rollout, or
    another rollout is under way)."""
    agent = Agent.objects.select_related("working_release").get(pk=agent_id)
    release = agent.working_release
    if release is None or release.pk == working_before:
        return ""
    if release.pk == agent.stable_release_id:
        return f"release v{release.version}, in force"
    return (
        f"release v{release.version}, not in force yet: v{agent.stable_version} decides "
        "until it is rolled out (its page says how)"
    )
