"""Writes for reviews and retirement. Each runs in one transaction with its audit events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from oversight.agents.constants import AgentStatus
from oversight.agents.locking import agent_lock
from oversight.agents.models import Agent
from oversight.agents.services import agent_update, token_revoke
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.lifecycle import actions_cancel_in_scope
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_delete, policy_object_update
from oversight.releases.services import releases_batched
from oversight.reviews import notices
from oversight.reviews.constants import ReviewOutcome
from oversight.reviews.models import Review
from oversight.reviews.selectors import grant_usage

MAX_NOTES = 2000


def _lock_in_service(agent: Agent) -> Agent:
    """The agent's row, locked for the rest of the transaction; refused once retired."""
    locked = agent_lock(agent.pk)
    if locked.status == AgentStatus.RETIRED:
        raise ValidationError(f"{locked.name} is retired: it is read-only.")
    return locked


def _open_review(*, agent: Agent, user: Any, now: dt.datetime) -> Review:
    # The agent's row is locked by the caller, so two reviewers cannot both create one.
    review = Review.objects.filter(agent=agent, completed_at__isnull=True).first()
    if review is None:
        review = Review.objects.create(agent=agent, started_by=user, started_at=now)
    return review


@transaction.atomic
def review_grant_remove(
    *, actor: Actor, user: Any, agent: Agent, grant_id: int, now: dt.datetime | None = None
) -> Review:
    """Remove one grant during a review (audited as a grant deletion); the open review
    keeps a note of it for its record."""
    now = now or timezone.now()
    locked = _lock_in_service(agent)
    grant = Grant.objects.filter(pk=grant_id, agent=locked).first()
    if grant is None:
        raise ValidationError("That grant is not one of this agent's (already removed?).")
    uses = grant_usage(agent=locked, now=now).get(grant.pk, (0, 0))
    review = _open_review(agent=locked, user=user, now=now)
    policy_object_delete(actor=actor, obj=grant)
    review.grants_removed = [
        *review.grants_removed,
        {
            "id": grant_id,
            "action": grant.action,
            "resource": grant.resource,
            "uses_30d": uses[0],
            "uses_90d": uses[1],
        },
    ]
    review.save(update_fields=["grants_removed"])
    return review


def _clean_notes(notes: str) -> str:
    notes = (notes or "").strip()
    if len(notes) > MAX_NOTES:
        raise ValidationError(f"Notes are limited to {MAX_NOTES} characters.")
    return notes


@transaction.atomic
def review_recertify(
    *,
    actor: Actor,
    user: Any,
    agent: Agent,
    purpose_confirmed: bool,
    notes: str = "",
    now: dt.datetime | None = None,
) -> Review:
    """Close the review: the agent is still needed for its purpose, with the grants it has
    left. The next review falls one interval from today."""
    now = now or timezone.now()
    notes = _clean_notes(notes)
    if not purpose_confirmed:
        raise ValidationError(
            "Confirm that the purpose is still right, or retire the agent instead."
        )
    locked = _lock_in_service(agent)
    review = _open_review(agent=locked, user=user, now=now)
    before = {
        "next_review_due": locked.next_review_due.isoformat(),
        "last_reviewed_at": locked.last_reviewed_at.isoformat()
        if locked.last_reviewed_at
        else None,
        "retirement_notice_at": (
            locked.retirement_notice_at.isoformat() if locked.retirement_notice_at else None
        ),
    }
    locked.next_review_due = timezone.localdate(now) + dt.timedelta(
        days=locked.review_interval_days
    )
    locked.last_reviewed_at = now
    # Someone vouched for the agent: a pending retirement for inactivity is withdrawn.
    locked.retirement_notice_at = None
    locked.save(update_fields=["next_review_due", "last_reviewed_at", "retirement_notice_at"])
    outcome = ReviewOutcome.REDUCED if review.grants_removed else ReviewOutcome.RECERTIFIED
    _close(review, user=user, outcome=outcome, notes=notes, now=now, purpose_confirmed=True)
    review.next_review_due = locked.next_review_due
    review.save(update_fields=["next_review_due"])
    audit_record(
        actor=actor,
        verb=verbs.REVIEW_COMPLETED,
        target=locked,
        before=before,
        after={
            "outcome": outcome,
            "next_review_due": locked.next_review_due.isoformat(),
            "last_reviewed_at": now.isoformat(),
            "retirement_notice_at": None,
            "grants_removed": [f"{g['action']} on {g['resource']}" for g in review.grants_removed],
            "notes": notes,
        },
    )
    return review


def _close(
    review: Review,
    *,
    user: Any,
    outcome: str,
    notes: str,
    now: dt.datetime,
    purpose_confirmed: bool,
) -> None:
    review.reviewed_by = user
    review.completed_at = now
    review.outcome = outcome
    review.notes = notes
    review.purpose_confirmed = purpose_confirmed
    review.save(
        update_fields=["reviewed_by", "completed_at", "outcome", "notes", "purpose_confirmed"]
    )


@transaction.atomic
def review_retire(
    *, actor: Actor, user: Any, agent: Agent, reason: str, now: dt.datetime | None = None
) -> Review:
    """Close the review by retiring the agent."""
    now = now or timezone.now()
    reason = _clean_notes(reason)
    locked = _lock_in_service(agent)
    review = _open_review(agent=locked, user=user, now=now)
    agent_retire(actor=actor, agent=locked, reason=reason, now=now)
    _close(
        review,
        user=user,
        outcome=ReviewOutcome.RETIRED,
        notes=reason,
        now=now,
        purpose_confirmed=False,
    )
    audit_record(
        actor=actor,
        verb=verbs.REVIEW_COMPLETED,
        target=locked,
        after={
            "outcome": ReviewOutcome.RETIRED,
            "grants_removed": [f"{g['action']} on {g['resource']}" for g in review.grants_removed],
            "notes": reason,
        },
    )
    return review


@transaction.atomic
def agent_retire(
    *, actor: Actor, agent: Agent, reason: str, now: dt.datetime | None = None
) -> bool:
    """Retire the agent: its tokens revoked, its grants disabled (expired now), its actions
    that have not run cancelled, its status retired. It stays in the registry, read-only,
    with its history. False if it was already retired (nothing changes)."""
    now = now or timezone.now()
    reason = _clean_notes(reason)
    if not reason:
        raise ValidationError("Say why the agent is retired.")
    locked = agent_lock(agent.pk)
    if locked.status == AgentStatus.RETIRED:
        return False
    revoked = sum(
        token_revoke(actor=actor, token=token)
        for token in locked.tokens.filter(revoked_at__isnull=True)
    )
    live_grants = Grant.objects.filter(agent=locked).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    disabled = 0
    # One release for them all, saying why, in force at once (retiring is not a change
    # that waits for a rollout): it made one release per grant, without notes.
    with releases_batched(notes=f"retired: {reason}"[:300], promote=True):
        for grant in live_grants:
            policy_object_update(actor=actor, obj=grant, expires_at=now)
            disabled += 1
    cancelled = actions_cancel_in_scope(
        actor=actor, agent_ids=[locked.pk], why=f"the agent was retired: {reason}"
    )
    retired = agent_update(actor=actor, agent=locked, status=AgentStatus.RETIRED)
    audit_record(
        actor=actor,
        verb=verbs.AGENT_RETIRED,
        target=retired,
        before={"status": locked.status},
        after={
            "status": AgentStatus.RETIRED,
            "reason": reason,
            "tokens_revoked": revoked,
            "grants_disabled": disabled,
            "actions_cancelled": cancelled,
        },
    )
    notices.agent_retired(retired, reason=reason)
    return True
