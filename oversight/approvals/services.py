"""Deciding held actions: votes are claimed atomically, so two reviewers clicking at once
give one outcome and the later one is told what happened."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import transaction
from django.utils import timezone

from oversight.approvals.edits import action_edit
from oversight.approvals.eligibility import vote_refusal
from oversight.approvals.models import MAX_COMMENT, ApprovalVote, Vote
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.constants import ActionStatus
from oversight.gateway.exceptions import ConflictError, NotFoundError
from oversight.gateway.lifecycle import action_expire_if_due
from oversight.gateway.models import Action
from oversight.live import broadcasts
from oversight.live.publish import after_commit
from oversight.policy.limits import limits_release

UNSEEN = (
    "Say which version of the action you approve (its request_hash, as you were shown "
    "it): load the action again."
)
CHANGED = "This action was edited since you loaded it: look at it again before you approve."
# A hash that was never this action's: it was not edited, so no older version was shown.
NOT_ITS_HASH = (
    "This is not the action's request hash: it has not been edited, so its request_hash is "
    "the one it was held with. Load it again."
)
# A request hash is a SHA-256 in hex (gateway/hashing.py): anything else was never shown
# as one, so it is bad input (422), not an older version of the action (409).
REQUEST_HASH = re.compile(r"[0-9a-f]{64}")
NOT_A_HASH = (
    "This is not a request hash (64 hexadecimal digits): send the action's request_hash "
    "as you were shown it."
)


def _target(action: Action) -> tuple[str, str, str]:
    return "gateway.action", str(action.pk), f"{action.action} on {action.resource}"[:200]


def approval_vote(
    *,
    user: Any,
    action_id: uuid.UUID,
    vote: str,
    comment: str = "",
    params: dict[str, Any] | None = None,
    seen: str | None = None,
) -> Action:
    """Record ``user``'s vote; N distinct approvals approve, one deny rejects. An approval
    with ``params`` approves the action with those params instead (approvals/edits.py).

    ``seen``: the ``request_hash`` of the action as the voter was shown it. An approval
    binds to what its voter saw: one of an action edited since is refused (409
    ``action_changed``), and one that says nothing (``""``) too (422). The browser's forms
    and the API always pass it; ``None`` skips the check, for callers in the server that
    show nobody anything (tests, scripts). A deny is taken whatever was seen; one that is
    not a request hash at all is refused (422), approve or deny."""
    if vote not in Vote.values:
        raise ValidationError({"vote": "Vote approve or deny."})
    if vote == Vote.DENY and not comment.strip():
        raise ValidationError({"comment": "Say why you deny it."})
    if "\x00" in comment:  # PostgreSQL's text refuses it
        raise ValidationError({"comment": ProhibitNullCharactersValidator.message})
    if len(comment) > MAX_COMMENT:  # the page's box, the API and a script: one bound
        raise ValidationError(
            {"comment": f"Keep it to {MAX_COMMENT:,} characters (this has {len(comment):,})."}
        )
    if params is not None and vote != Vote.APPROVE:
        raise ValidationError({"params": "Only an approval may edit the params."})
    if vote == Vote.APPROVE and seen is not None and not seen:
        raise ValidationError({"request_hash": UNSEEN})
    if seen and not REQUEST_HASH.fullmatch(seen):
        raise ValidationError({"request_hash": NOT_A_HASH})
    action, voted = _vote(
        user=user, action_id=action_id, vote=vote, comment=comment, params=params, seen=seen
    )
    if not voted:  # its deadline had passed: it expired instead, and that stands
        raise _already_decided(action)
    return action


def _already_decided(action: Action) -> ConflictError:
    return ConflictError(
        f"This action was already decided; its status now: {action.get_status_display().lower()}.",
        "already_decided",
    )


def action_lock(action_id: uuid.UUID) -> Action:
    """The action's row, locked until the transaction ends, with its agent (not locked):
    votes on one action are applied one at a time, in commit order. ``FOR NO KEY UPDATE``
    lets the agent's decisions commit meanwhile (see agents/locking.py)."""
    return (
        Action.objects.select_for_update(of=("self",), no_key=True)
        .select_related("agent")
        .get(pk=action_id)
    )


@transaction.atomic
def _vote(
    *,
    user: Any,
    action_id: uuid.UUID,
    vote: str,
    comment: str,
    params: dict[str, Any] | None,
    seen: str | None,
) -> tuple[Action, bool]:
    """The vote, under the action's row lock; (the action, False) when the lock found it
    past its deadline: then it is expired here (committed) and nobody's vote counts."""
    try:
        action = action_lock(action_id)
    except Action.DoesNotExist:
        raise NotFoundError("No such action.") from None
    if not getattr(user, "is_active", False):
        raise PermissionDenied("You may not decide this agent's actions.")
    # Who may decide is read under the action's lock: an escalation committed before it
    # is seen; one committing after only adds admins, so nobody is wrongly let in.
    refusal = vote_refusal(action=action, user=user, vote=vote)
    if refusal:
        raise PermissionDenied(refusal)
    # The deadline is read under the lock too: a vote that waited for the lock (another
    # vote, an edit) while the deadline passed must not approve after it. The expiry is
    # claimed here, as the expiry job would (it waits for this lock, then finds it done).
    action = action_expire_if_due(action=action)
    if action.status == ActionStatus.EXPIRED:
        return action, False
    if action.status != ActionStatus.PENDING:
        raise _already_decided(action)
    # What the voter saw is compared under the lock: an edit (which takes this lock too)
    # committed before it is seen here, so no approval counts for params its voter never
    # saw; one committing after supersedes this approval (approvals/edits.py).
    if vote == Vote.APPROVE and seen is not None and seen != action.request_hash:
        edited = action.requested_params is not None
        raise ConflictError(CHANGED if edited else NOT_ITS_HASH, "action_changed")
    if ApprovalVote.objects.filter(action=action, voter=user, superseded=False).exists():
        raise ConflictError("You already voted on this action.", "already_voted")

    # Approve with edits: the action changes (and is decided again) before the vote. The
    # edit may have bound it to stricter rules' approvers (approvals/edits.py): the editor
    # approves only if she may approve the action as edited; else nothing changes.
    edit = action_edit(action=action, params=params) if params is not None else None
    if edit and (refusal := vote_refusal(action=action, user=user, vote=vote)):
        raise ValidationError({"params": f"You may not approve the action as edited: {refusal}"})
    ApprovalVote.objects.create(
        action=action,
        voter=user,
        vote=vote,
        comment=comment.strip(),
        params=action.params if edit else None,
    )
    approvals = ApprovalVote.objects.filter(
        action=action, vote=Vote.APPROVE, superseded=False
    ).count()
    before = {"status": action.status, "approvals": approvals - (vote == Vote.APPROVE)}
    edited = {}
    if edit:  # the audit keeps both: the params as asked (before) and as approved (after)
        before |= edit["before"]
        edited = {
            **edit["after"],
            "edited": True,
            "superseded_votes": edit["superseded_votes"],
            "decided_again": edit["decided_again"],  # the edited params' own reasons
        }
    if vote == Vote.DENY:
        action.status, action.finished_at = ActionStatus.REJECTED, timezone.now()
        limits_release(action.limit_usage)
    elif approvals >= action.approvals_required:
        action.status = ActionStatus.APPROVED
    action.save(update_fields=["status", "finished_at"])
    after_commit(lambda: broadcasts.action_changed(action.pk, created=False))
    audit_record(
        actor=Actor.for_user(user),
        verb=verbs.ACTION_VOTED,
        target=_target(action),
        agent_id=action.agent_id,
        before=before,
        after={
            "status": action.status,
            "approvals": approvals,
            "vote": vote,
            "comment": comment.strip(),
            **edited,
        },
    )
    return action, True
