"""Reviews and retirement as services: grant usage, removing grants, outcomes, retiring."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.policy.models import Grant
from oversight.reviews.models import Review
from oversight.reviews.selectors import denial_rate, grant_rows, grant_usage, reviews_overdue
from oversight.reviews.services import (
    agent_retire,
    review_grant_remove,
    review_recertify,
    review_retire,
)
from tests.conftest import SYSTEM
from tests.reviews.helpers import DAY, act, fresh, grant

pytestmark = pytest.mark.django_db


def test_grant_usage_counts_the_actions_each_grant_allowed_in_30_and_90_days(
    agent: Agent, other_agent: Agent
) -> None:
    now = timezone.now()
    refunds, reads, unused = (
        grant(agent, "payments.refund", age_days=120),
        grant(agent, "payments.read", age_days=120),
        grant(agent, "payments.void", age_days=120),
    )
    act(agent, at=now - 1 * DAY, grants=(refunds,))
    act(agent, at=now - 29 * DAY, grants=(refunds, reads))
    act(agent, at=now - 31 * DAY, grants=(refunds,))
    act(agent, at=now - 89 * DAY, grants=(reads,))
    act(agent, at=now - 91 * DAY, grants=(refunds, reads, unused))  # too old
    act(agent, at=now - 2 * DAY, status="denied")  # no grant
    # Matched by the grant but never let run: not uses. (They were counted: the page read
    # "used 105" for a grant whose actions had run 37 times.)
    for status in ("pending", "cancelled", "rejected", "expired"):
        act(agent, at=now - 3 * DAY, grants=(refunds, unused), status=status)
    act(agent, at=now - 4 * DAY, grants=(reads,), status="approved")  # held, then approved
    act(agent, at=now - 5 * DAY, grants=(reads,), status="dry_run")  # allowed in staging
    other_grant = grant(other_agent, "mail.send")
    act(other_agent, at=now - DAY, grants=(other_grant,))

    usage = grant_usage(agent=agent, now=now)
    assert usage == {refunds.pk: (2, 3), reads.pk: (3, 4)}
    rows = {row.grant.action: row for row in grant_rows(agent=agent, now=now)}
    assert (rows["payments.void"].uses_30d, rows["payments.void"].uses_90d) == (0, 0)
    assert [a for a, row in rows.items() if row.unused] == ["payments.void"]


def test_denial_rate_over_30_days(agent: Agent) -> None:
    now = timezone.now()
    for status in ("allowed", "denied", "denied", "succeeded"):
        act(agent, at=now - DAY, status=status)
    act(agent, at=now - 40 * DAY, status="denied")
    rate = denial_rate(agent=agent, now=now)
    assert (rate.total, rate.denied, rate.percent) == (4, 2, 50.0)


def test_removing_a_grant_during_a_review_is_audited_and_noted(agent: Agent, owner: Any) -> None:
    unused = grant(agent, "payments.void")
    version = fresh(agent).policy_version
    review = review_grant_remove(actor=SYSTEM, user=owner, agent=agent, grant_id=unused.pk)
    assert not Grant.objects.filter(pk=unused.pk).exists()
    assert fresh(agent).policy_version == version + 1
    assert AuditEvent.objects.filter(verb="grant.deleted", agent_id=agent.pk).count() == 1
    assert review.is_open and review.started_by == owner
    assert review.grants_removed == [
        {"id": unused.pk, "action": "payments.void", "resource": "*", "uses_30d": 0, "uses_90d": 0}
    ]


def test_removing_another_agent_s_grant_is_refused(
    agent: Agent, other_agent: Agent, owner: Any
) -> None:
    theirs = grant(other_agent, "mail.send")
    with pytest.raises(ValidationError, match="not one of this agent"):
        review_grant_remove(actor=SYSTEM, user=owner, agent=agent, grant_id=theirs.pk)
    assert Grant.objects.filter(pk=theirs.pk).exists()
    assert not Review.objects.exists()


def test_recertifying_after_removing_grants_records_access_reduced(
    agent: Agent, owner: Any
) -> None:
    Agent.objects.filter(pk=agent.pk).update(next_review_due=timezone.localdate() - 3 * DAY)
    assert list(reviews_overdue(user=owner)) == [fresh(agent)]
    unused = grant(agent, "payments.void")
    review_grant_remove(actor=SYSTEM, user=owner, agent=agent, grant_id=unused.pk)
    now = timezone.now()
    review = review_recertify(
        actor=SYSTEM, user=owner, agent=agent, purpose_confirmed=True, notes="Fine.", now=now
    )
    assert review.outcome == "reduced" and review.completed_at == now
    assert review.reviewed_by == owner and review.notes == "Fine."
    reviewed = fresh(agent)
    assert reviewed.last_reviewed_at == now
    assert reviewed.next_review_due == timezone.localdate(now) + 90 * DAY
    assert review.next_review_due == reviewed.next_review_due
    assert list(reviews_overdue(user=owner)) == []
    event = AuditEvent.objects.get(verb="review.completed")
    assert event.after["outcome"] == "reduced"
    assert event.after["grants_removed"] == ["payments.void on *"]


def test_recertifying_without_removing_anything(agent: Agent, owner: Any) -> None:
    review = review_recertify(actor=SYSTEM, user=owner, agent=agent, purpose_confirmed=True)
    assert review.outcome == "recertified"
    assert Review.objects.count() == 1


def test_recertifying_needs_the_purpose_confirmed(agent: Agent, owner: Any) -> None:
    due = fresh(agent).next_review_due
    with pytest.raises(ValidationError, match="purpose"):
        review_recertify(actor=SYSTEM, user=owner, agent=agent, purpose_confirmed=False)
    assert fresh(agent).next_review_due == due
    assert not Review.objects.exists()
    assert not AuditEvent.objects.filter(verb="review.completed").exists()


def test_retiring_revokes_tokens_disables_grants_and_cancels_pending_actions(
    agent: Agent, owner: Any, team_admin: Any
) -> None:
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="staging")
    refunds = grant(agent, "payments.refund")
    pending = act(agent, status="pending")
    done = act(agent, status="succeeded")
    now = timezone.now()

    assert agent_retire(actor=SYSTEM, agent=agent, reason="Replaced by v2.", now=now)

    retired = fresh(agent)
    assert (retired.status, retired.retired_at is not None) == ("retired", True)
    token.refresh_from_db()
    refunds.refresh_from_db()
    assert token.revoked_at is not None
    assert refunds.expires_at == now
    assert Action.objects.get(pk=pending.pk).status == "cancelled"
    assert Action.objects.get(pk=done.pk).status == "succeeded"
    event = AuditEvent.objects.get(verb="agent.retired")
    assert event.after == {
        "status": "retired",
        "reason": "Replaced by v2.",
        "tokens_revoked": 1,
        "grants_disabled": 1,
        "actions_cancelled": 1,
    }
    verbs = set(AuditEvent.objects.filter(agent_id=agent.pk).values_list("verb", flat=True))
    assert {"token.revoked", "grant.updated", "action.cancelled", "agent.updated"} <= verbs

    # Retiring again changes nothing.
    count = AuditEvent.objects.count()
    assert not agent_retire(actor=SYSTEM, agent=agent, reason="Again.")
    assert AuditEvent.objects.count() == count


def test_retiring_needs_a_reason(agent: Agent) -> None:
    with pytest.raises(ValidationError, match="why"):
        agent_retire(actor=SYSTEM, agent=agent, reason="  ")
    assert fresh(agent).status == "active"


def test_a_review_that_retires_is_recorded(agent: Agent, owner: Any) -> None:
    review = review_retire(actor=SYSTEM, user=owner, agent=agent, reason="No longer needed.")
    assert review.outcome == "retired" and review.notes == "No longer needed."
    assert fresh(agent).status == "retired"
    with pytest.raises(ValidationError, match="retired"):
        review_recertify(actor=SYSTEM, user=owner, agent=agent, purpose_confirmed=True)


def test_a_grant_too_young_to_tell_or_needed_for_undos_is_not_unused(agent: Agent) -> None:
    from oversight.policy.models import Grant

    now = timezone.now()
    grant(agent, "payments.read")  # granted today, never used yet
    refunds = grant(agent, "payments.refund", age_days=120)
    Grant.objects.filter(pk=refunds.pk).update(
        reversibility="reversible", undo_action="payments.charge", undo_window_seconds=3600
    )
    grant(agent, "payments.charge", age_days=120)  # never used: no refund was undone
    rows = {row.grant.action: row for row in grant_rows(agent=agent, now=now)}
    assert [a for a, row in rows.items() if row.unused] == ["payments.refund"]
    assert (rows["payments.read"].young, rows["payments.charge"].undoes) == (
        True,
        "payments.refund",
    )


def test_retiring_disables_the_grants_in_one_release_saying_why_in_force_at_once(
    agent: Agent,
) -> None:
    """Two grants made two releases in one second, without notes; under change control
    they would have waited for a rollout."""
    from oversight.accounts.services import team_change_control_update
    from oversight.releases.models import Release

    grant(agent, "payments.refund")
    grant(agent, "email.send")
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="low")
    before = Release.objects.filter(agent=agent).count()
    assert agent_retire(actor=SYSTEM, agent=agent, reason="Replaced by v2.")
    releases = Release.objects.filter(agent=agent).order_by("version")
    assert releases.count() == before + 1
    newest = releases.last()
    assert newest.notes == "retired: Replaced by v2."
    assert fresh(agent).stable_release_id == newest.pk  # in force, not awaiting a rollout
