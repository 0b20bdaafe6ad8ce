"""What changed in a scope: the audit log's changes (not its traffic), grouped into the
changes people made, each with what it can affect.

A change is one or more audit events by one actor in one go (a grant edit and the
release it cut; a release and its rollout). What it can affect (``touches``) is a set of
action patterns: the grants', rules' and limits' own, a changed tool's action, or ``*``
for a change that can affect anything the agent does (its instructions, model or tools,
its owner). ``weight`` says how directly a change of its kind steers behaviour: policy,
releases and tools fully; who owns the agent less; team settings and paperwork little.

Responses to trouble are not candidate causes: the kill switch engaged, the hold set by an
alert, the guard's rollback, undos and rewinds, alerts themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from oversight.audit import verb_families, verbs
from oversight.audit.models import ActorType, AuditEvent
from oversight.audit.verbs import ACTION_VERBS
from oversight.releases.content import content_diff
from oversight.releases.models import Release

# Events in one change: same actor (and request, when both have one), each within this of
# the one before; what one service call writes (an edit, the release it cuts, its
# promotion) is milliseconds apart, and two edits by hand are seconds apart.
GROUP_SECONDS = 0.5

# How directly each kind of change steers behaviour (see the module's docstring).
WEIGHTS = {
    "policy": 1.0,
    "release": 1.0,
    "config": 1.0,
    "tool": 1.0,
    "owner": 0.8,
    "switch": 0.5,
    "token": 0.4,
    "team": 0.3,
    "registry": 0.2,
}

RESPONSES = frozenset(
    {
        verbs.KILLSWITCH_ENGAGED,
        *verb_families.ALERTS.verbs,  # alerts and the holds they set
        *verb_families.REWIND.verbs,  # undos and rewinds
        *verb_families.INCIDENTS.verbs,
        verbs.NOTIFICATION_TEST_QUEUED,
        verbs.AUDIT_EXPORTED,
        verbs.AUDIT_VERIFICATION_STARTED,
        verbs.PERSONAL_TOKEN_CREATED,
        verbs.PERSONAL_TOKEN_REVOKED,
        verbs.AGENT_UNOWNED_FLAGGED,
        verbs.AGENT_UNOWNED_CLEARED,
        verbs.AGENT_RETIREMENT_NOTICE_GIVEN,
        verbs.AGENT_RETIREMENT_NOTICE_WITHDRAWN,
    }
)
# A system's rollback is the guard answering a regression; a person's may be a cause.
SYSTEM_RESPONSES = frozenset(
    {verbs.ROLLOUT_ROLLED_BACK, verbs.RELEASE_ROLLED_BACK, verbs.RELEASE_PROMOTED}
)
# Team-wide changes (recorded without an agent).
TEAM_VERBS = (
    verbs.LIMIT_CREATED,
    verbs.LIMIT_UPDATED,
    verbs.LIMIT_DELETED,
    verbs.TEAM_UPDATED,
    verbs.TEAM_CHANNELS_UPDATED,
    verbs.KILLSWITCH_RELEASED,
)
AGENT_CONFIG = ("instructions", "model_name", "model_settings", "tools")


@dataclass
class Change:
    at: dt.datetime
    actor: str
    events: list[AuditEvent]
    agent_id: int | None
    kind: str = "registry"
    touches: set[str] = field(default_factory=set)
    what: list[str] = field(default_factory=list)

    @property
    def weight(self) -> float:
        return WEIGHTS[self.kind]

    @property
    def broad(self) -> bool:
        return "*" in self.touches

    @property
    def summary(self) -> str:
        return "; ".join(dict.fromkeys(self.what)) or self.events[0].verb

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "kind": self.kind,
            "summary": self.summary,
            "touches": sorted(self.touches),
            "agent_id": self.agent_id,
            "events": [
                {"seq": e.seq, "verb": e.verb, "target": e.target_label} for e in self.events
            ],
        }


def change_events(
    *, agent_ids: Sequence[int], team_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> list[AuditEvent]:
    """The scope's change events in [start, end), oldest first: the agents' own (the
    partial index of changes serves it) and team-wide and everyone's limits, team
    settings and switch releases."""
    in_window = Q(created_at__gte=start, created_at__lt=end)
    own = Q(agent_id__in=list(agent_ids)) & ~Q(verb__in=ACTION_VERBS)
    team_wide = Q(agent_id__isnull=True, verb__in=TEAM_VERBS)
    events = AuditEvent.objects.filter(in_window & (own | team_wide)).order_by("seq")
    return [e for e in events if _relevant(e, team_ids)]


def _relevant(event: AuditEvent, team_ids: Sequence[int]) -> bool:
    if event.verb in RESPONSES:
        return False
    if event.verb in SYSTEM_RESPONSES and event.actor_type == ActorType.SYSTEM:
        return False
    if event.agent_id is not None:
        return True
    if event.target_type == "accounts.team":
        return int(event.target_id) in team_ids
    if event.target_type == "killswitch.killswitch":
        from oversight.killswitch.models import KillSwitch

        switch = KillSwitch.objects.filter(pk=event.target_id).first()
        return switch is not None and (switch.team_id is None or switch.team_id in team_ids)
    # A limit without an agent: the team's own, or everyone's.
    state = event.after or event.before or {}
    team = state.get("team") if isinstance(state, dict) else None
    return team is None or _team_named(team, team_ids)


def _team_named(name: Any, team_ids: Sequence[int]) -> bool:
    from oversight.accounts.models import Team

    return Team.objects.filter(pk__in=list(team_ids), name=str(name)).exists()


def group_changes(events: Iterable[AuditEvent]) -> list[Change]:
    changes: list[Change] = []
    for event in events:
        last = changes[-1] if changes else None
        previous = last.events[-1] if last is not None else None
        if (
            last is not None
            and previous is not None
            and last.actor == event.actor_label
            and last.agent_id == event.agent_id
            and (event.created_at - previous.created_at).total_seconds() <= GROUP_SECONDS
            and not (
                previous.request_id and event.request_id and previous.request_id != event.request_id
            )
        ):
            last.events.append(event)
        else:
            changes.append(
                Change(
                    at=event.created_at,
                    actor=event.actor_label,
                    events=[event],
                    agent_id=event.agent_id,
                )
            )
    for change in changes:
        _describe(change)
    return changes


_RANK = ["registry", "team", "token", "switch", "owner", "tool", "policy", "config", "release"]


def _describe(change: Change) -> None:
    """Its kind (the most steering of its events'), what it touches (by the events of
    that weight: a purpose edited along with a grant does not make the grant's change
    touch everything), what it did."""
    described = [_event(event) for event in change.events]
    change.kind = max((kind for kind, _, _ in described), key=_RANK.index)
    top = WEIGHTS[change.kind]
    for kind, touches, what in described:
        if WEIGHTS[kind] >= top:
            change.touches |= touches
        change.what.append(what)


def _patterns(event: AuditEvent) -> set[str]:
    found = set()
    for state in (event.before, event.after):
        if isinstance(state, dict) and state.get("action"):
            found.add(str(state["action"]))
    return found or {"*"}


def _event(event: AuditEvent) -> tuple[str, set[str], str]:
    verb, label = event.verb, event.target_label
    noun, _, done = verb.partition(".")
    label = label.removeprefix(f"{noun} ")  # "rule deleted: x", not "rule deleted: rule x"
    if noun in ("grant", "rule", "limit"):
        return "policy", _patterns(event), f"{noun} {done.replace('_', ' ')}: {label}"
    if noun in ("release", "rollout"):
        return "release", _release_touches(event), f"{noun} {done.replace('_', ' ')}: {label}"
    if noun == "tool":
        return "tool", _patterns(event), f"tool {done}: {label}"
    if verb == verbs.AGENT_UPDATED:
        return _agent_update(event)
    if verb in (verbs.AGENT_ACCESS_GRANTED, verbs.AGENT_ACCESS_REVOKED):
        return "owner", {"*"}, f"{verb.replace('agent.', 'access ').replace('_', ' ')}: {label}"
    if noun == "token":
        return "token", {"*"}, f"token {done}: {label}"
    if verb == verbs.KILLSWITCH_RELEASED:
        return "switch", {"*"}, f"kill switch released: {label}"
    if noun in ("team", "team_channels"):
        return "team", {"*"}, f"team settings changed: {label}"
    return "registry", {"*"}, f"{verb}: {label}"


def _agent_update(event: AuditEvent) -> tuple[str, set[str], str]:
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if any(name in changed for name in AGENT_CONFIG):
        fields = ", ".join(n for n in changed if n in AGENT_CONFIG)
        return "config", {"*"}, f"agent's {fields} changed"
    if "owner" in changed:
        return "owner", {"*"}, f"owner changed from {before.get('owner')} to {after.get('owner')}"
    if "status" in changed:
        return "switch", {"*"}, f"status changed to {after.get('status')}"
    return "registry", {"*"}, f"agent's {', '.join(changed) or 'record'} changed"


def _release_touches(event: AuditEvent) -> set[str]:
    """What a release changed against the one before it: ``*`` when its config did."""
    if event.target_type != "releases.release":
        return {"*"}
    release = Release.objects.filter(pk=event.target_id).first()
    if release is None:
        return {"*"}
    parent = (
        Release.objects.filter(agent_id=release.agent_id, version__lt=release.version)
        .order_by("-version")
        .first()
    )
    diff = content_diff(parent.content if parent else {}, release.content)
    if diff["config"]:
        return {"*"}
    touched = set()
    for part in ("grants", "rules"):
        for item in diff[part]["added"] + diff[part]["removed"]:
            touched.add(item["action"])
        for _key, old, new in diff[part]["changed"]:
            touched |= {old["action"], new["action"]}
    return touched or {"*"}
