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

# One change is an edit and what it set off: the release it cut, its promotion or rollout
# (release and rollout events by the same actor within FOLLOW_SECONDS, in the same request
# when both have one), or more events about the same object within GROUP_SECONDS. What one
# service call writes is milliseconds apart; a rollout started on the release just cut
# comes seconds later; two edits by hand are seconds apart, and stay two changes.
GROUP_SECONDS = 0.5
FOLLOW_SECONDS = 5.0
FOLLOWS = ("release.", "rollout.")

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
SYSTEM_ROLLBACKS = frozenset({verbs.ROLLOUT_ROLLED_BACK, verbs.RELEASE_ROLLED_BACK})
SYSTEM_RESPONSES = SYSTEM_ROLLBACKS | {verbs.RELEASE_PROMOTED}
ROLLBACK_RUN = dt.timedelta(seconds=5)  # how far from a rollback its own events may be
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
        return "; ".join(dict.fromkeys(self.what)) or verbs.spoken(self.events[0].verb).lower()

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
    return [e for e in _without_what_responses_did(events) if _relevant(e, team_ids)]


def _without_what_responses_did(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """The events, less those a system's rollback made along with it: rolling a candidate
    back, the guard puts the agent's working copy back to the stable release (agent.updated,
    grant and rule events, by the guard, in the same transaction), which changes nothing
    that decides; it is the response, not a cause. One transaction's events are
    consecutive in the log (appending holds the chain's lock until commit): here, the
    same system actor's events on the same agent next to the rollback's own (before or
    after it, within ROLLBACK_RUN)."""
    events = list(events)
    dropped: set[int] = set()
    for index, event in enumerate(events):
        if event.verb not in SYSTEM_ROLLBACKS or event.actor_type != ActorType.SYSTEM:
            continue
        for step in (-1, 1):
            seq, at = event.seq, index + step
            while 0 <= at < len(events) and _same_run(event, events[at], seq + step):
                seq = events[at].seq
                dropped.add(seq)
                at += step
    return [event for event in events if event.seq not in dropped]


def _same_run(rollback: AuditEvent, event: AuditEvent, seq: int) -> bool:
    return (
        event.seq == seq
        and event.actor_label == rollback.actor_label
        and event.agent_id == rollback.agent_id
        and abs(event.created_at - rollback.created_at) <= ROLLBACK_RUN
    )


def _is_system_response(event: AuditEvent) -> bool:
    return event.verb in SYSTEM_RESPONSES and event.actor_type == ActorType.SYSTEM


def _relevant(event: AuditEvent, team_ids: Sequence[int]) -> bool:
    if event.verb in RESPONSES:
        return False
    if _is_system_response(event):
        return False
    if event.agent_id is not None:
        return True
    return _team_of(event) in (*team_ids, EVERYONE)


EVERYONE = 0  # what _team_of answers for a change that applies to every team


def _team_of(event: AuditEvent) -> int | None:
    """The team a change recorded without an agent is about (EVERYONE for everyone's
    limits and the global switch; None when it cannot be told)."""
    from oversight.killswitch.models import KillSwitch
    from oversight.notifications.models import TeamChannels

    kind, key = event.target_type, event.target_id
    if kind == "accounts.team":
        return int(key)
    if kind == "notifications.teamchannels":
        return TeamChannels.objects.filter(pk=key).values_list("team_id", flat=True).first()
    if kind == "killswitch.killswitch":
        switch = KillSwitch.objects.filter(pk=key).first()
        return None if switch is None else (switch.team_id or EVERYONE)
    if kind == "policy.limit":
        state = event.after or event.before or {}
        team = state.get("team") if isinstance(state, dict) else None
        return EVERYONE if team is None else _team_named(team)
    return None


def _team_named(name: Any) -> int | None:
    from oversight.accounts.models import Team

    return Team.objects.filter(name=str(name)).values_list("pk", flat=True).first()


def group_changes(events: Iterable[AuditEvent]) -> list[Change]:
    changes: list[Change] = []
    for event in events:
        last = changes[-1] if changes else None
        if last is not None and _follows(last, event):
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


def _follows(change: Change, event: AuditEvent) -> bool:
    previous, first = change.events[-1], change.events[0]
    gap = (event.created_at - previous.created_at).total_seconds()
    same_object = (event.target_type, event.target_id) == (first.target_type, first.target_id)
    return (
        change.actor == event.actor_label
        and change.agent_id == event.agent_id
        and not (
            previous.request_id and event.request_id and previous.request_id != event.request_id
        )
        and (
            (event.verb.startswith(FOLLOWS) and gap <= FOLLOW_SECONDS)
            or (same_object and gap <= GROUP_SECONDS)
        )
    )


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
    if verb == verbs.RELEASE_ROLLED_BACK and isinstance(event.before, dict):
        # Its target is the release the rollback made: "rollback to v2, as refund-bot v4".
        to = event.before.get("rolled_back_to")
        return "release", _release_touches(event), f"rollback to v{to}, as {label}"
    if noun in ("release", "rollout"):
        return "release", _release_touches(event), f"{noun} {done.replace('_', ' ')}: {label}"
    if noun == "tool":
        return "tool", _patterns(event), f"tool {done}: {label}"
    if verb == verbs.AGENT_UPDATED:
        return _agent_update(event)
    if verb in (verbs.AGENT_ACCESS_GRANTED, verbs.AGENT_ACCESS_REVOKED):
        return "owner", {"*"}, f"access {done.removeprefix('access_')}: {label}"
    if noun == "token":
        return "token", {"*"}, f"token {done}: {label}"
    if verb == verbs.KILLSWITCH_RELEASED:
        return "switch", {"*"}, f"kill switch released: {label}"
    if noun in ("team", "team_channels"):
        return "team", {"*"}, f"team settings changed: {label}"
    return "registry", {"*"}, f"{verbs.spoken(verb).lower()}: {label}"


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
