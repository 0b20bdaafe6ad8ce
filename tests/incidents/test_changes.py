"""How the audit log's events become changes: an edit with what it set off is one change;
edits made one after another stay apart."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from oversight.accounts.services import team_change_control_update
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.incidents.analysis.changes import change_events, group_changes
from oversight.policy.models import Rule
from oversight.policy.services import policy_object_create
from oversight.releases import guard, rollouts
from oversight.releases.models import Rollout
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, grant_refunds

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


def test_what_the_guard_puts_back_after_its_rollback_is_not_a_change(
    agent: Any, owner: Any, admin_user: Any
) -> None:
    """The guard rolls a candidate back, then puts the agent's working copy back to the
    stable release (a rule deleted, by the guard, in the same transaction): that is its
    response, not a candidate cause. An incident page named it the likely cause, ahead of
    the candidate itself."""
    grant_refunds(agent)
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    start = timezone.now()
    rule = Rule(agent=agent, name="no refunds", effect="forbid", action=REFUND)
    policy_object_create(actor=Actor.for_user(owner), obj=rule)  # a candidate, awaiting
    rollout = Rollout.objects.get(agent=agent)
    rollouts.rollout_approve(actor=Actor.for_user(admin_user), rollout=rollout)
    rollouts.rollout_roll_back(actor=guard.GUARD, rollout=rollout, why="regression")
    logged = AuditEvent.objects.filter(created_at__gte=start).order_by("seq")
    put_back = [
        e for e in logged if e.actor_label == guard.GUARD.label and e.verb == "rule.deleted"
    ]
    assert len(put_back) == 1  # the guard did put the working copy back

    events = change_events(
        agent_ids=[agent.pk], team_ids=[agent.team_id], start=start, end=timezone.now()
    )
    assert put_back[0].seq not in [e.seq for e in events]
    assert {e.actor_label for e in events} == {owner.username, admin_user.username}
    assert "rule.created" in [e.verb for e in events]
