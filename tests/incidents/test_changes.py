"""How the audit log's events become changes: an edit with what it set off is one change;
edits made one after another stay apart."""

from __future__ import annotations

import datetime as dt

import pytest

from oversight.audit.models import AuditEvent
from oversight.incidents.analysis.changes import group_changes

pytestmark = pytest.mark.django_db  # a release is looked up for what it touches

T0 = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def _event(seq: int, seconds: float, verb: str, target: str, actor: str = "alice") -> AuditEvent:
    kind, _, key = target.partition(":")
    after = {"action": "payments.refund"} if kind.startswith("policy.") else None
    return AuditEvent(
        seq=seq,
        created_at=T0 + dt.timedelta(seconds=seconds),
        actor_type="user",
        actor_label=actor,
        verb=verb,
        target_type=kind,
        target_id=key,
        target_label=f"{kind} {key}",
        agent_id=1,
        after=after,
    )


def test_an_edit_its_release_and_the_rollout_started_on_it_are_one_change() -> None:
    changes = group_changes(
        [
            _event(1, 0.0, "agent.updated", "agents.agent:1"),
            _event(2, 0.01, "release.created", "releases.release:7"),
            _event(3, 2.5, "rollout.started", "releases.rollout:3"),
        ]
    )
    assert [[e.seq for e in c.events] for c in changes] == [[1, 2, 3]]


def test_edits_one_after_another_are_changes_of_their_own() -> None:
    changes = group_changes(
        [
            _event(1, 0.0, "grant.created", "policy.grant:1"),
            _event(2, 0.02, "release.created", "releases.release:7"),
            _event(3, 0.3, "limit.updated", "policy.limit:4"),  # another object, at once
            _event(4, 0.31, "release.created", "releases.release:8"),
            _event(5, 0.6, "rule.deleted", "policy.rule:2", actor="bob"),  # another person
            _event(6, 9.0, "release.promoted", "releases.release:8"),  # too late to follow
        ]
    )
    assert [[e.seq for e in c.events] for c in changes] == [[1, 2], [3, 4], [5], [6]]
    assert [c.kind for c in changes] == ["release", "release", "policy", "release"]
