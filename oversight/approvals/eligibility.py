"""Who may still decide a held action."""

from __future__ import annotations

from django.contrib.auth.models import User

from oversight.approvals.models import ApprovalVote
from oversight.gateway.models import Action
from oversight.notifications.selectors import action_reviewers


def eligible_approvers(action: Action) -> list[User]:
    """The active people who may still cast a vote on ``action``, ordered by id.

    Those who may decide the agent's held actions (``action_reviewers``: holders of
    ``approve_agent`` on the agent, or the admins when nobody holds it), without the
    agent's owner when the action requires separation of duties, and without anyone
    who has already voted on it. Read in two statements, whatever their number.
    """
    voted = ApprovalVote.objects.filter(action_id=action.pk).values("voter_id")
    people = action_reviewers(agent=action.agent).exclude(pk__in=voted)
    if action.separation_of_duties:
        people = people.exclude(pk=action.agent.owner_id)
    return list(people)
