"""Votes on held actions: N distinct approvals approve, one deny rejects, and a decided
action stays decided, even when many reviewers click at once."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse

from oversight.accounts import roles
from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import agent_access_grant
from oversight.approvals import services
from oversight.approvals.escalation import action_escalate
from oversight.approvals.models import ApprovalVote
from oversight.approvals.services import approval_vote
from oversight.audit.models import AuditEvent
from oversight.gateway.exceptions import ConflictError, NotFoundError
from oversight.gateway.models import Action
from oversight.gateway.selectors import action_for_agent
from oversight.policy.models import LimitCounter
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import decide, expire, limit_create, refund, refund_policy_create

pytestmark = pytest.mark.django_db


def _held(token: AgentToken, **hold_fields: Any) -> Action:
    """A refund over the hold threshold, held under a hold rule with ``hold_fields``."""
    refund_policy_create(token.agent, **hold_fields)
    action = decide(token, refund(600))
    assert action.status == "pending"
    return action


def _status(action: Action) -> str:
    return Action.objects.values_list("status", flat=True).get(pk=action.pk)


def test_one_approval_approves_a_one_approval_hold(prod_token: AgentToken, rita: Any) -> None:
    action = _held(prod_token)
    decided = approval_vote(user=rita, action_id=action.pk, vote="approve")
    assert decided.status == _status(action) == "approved"


def test_a_two_approval_hold_needs_two_different_people(
    prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    action = _held(prod_token, approvals=2)
    assert action.approvals_required == 2

    assert approval_vote(user=rita, action_id=action.pk, vote="approve").status == "pending"
    assert approval_vote(user=rob, action_id=action.pk, vote="approve").status == "approved"
    assert ApprovalVote.objects.filter(action=action, vote="approve").count() == 2


def test_the_same_person_approving_twice_is_a_conflict(prod_token: AgentToken, rita: Any) -> None:
    action = _held(prod_token, approvals=2)
    approval_vote(user=rita, action_id=action.pk, vote="approve")

    with pytest.raises(ConflictError, match="already voted"):
        approval_vote(user=rita, action_id=action.pk, vote="approve")
    assert _status(action) == "pending"
    assert ApprovalVote.objects.filter(action=action).count() == 1


def test_one_deny_rejects(prod_token: AgentToken, rita: Any, rob: Any) -> None:
    action = _held(prod_token, approvals=2)
    approval_vote(user=rita, action_id=action.pk, vote="approve")
    decided = approval_vote(user=rob, action_id=action.pk, vote="deny", comment="wrong customer")

    assert decided.status == _status(action) == "rejected"
    assert decided.finished_at is not None
    decided_words = "already decided; its status now: denied by a reviewer"
    with pytest.raises(ConflictError, match=decided_words):
        approval_vote(user=rita, action_id=action.pk, vote="approve")


@pytest.mark.parametrize("comment", ["", "   "], ids=["empty", "blank"])
def test_a_deny_needs_a_comment(prod_token: AgentToken, rita: Any, comment: str) -> None:
    action = _held(prod_token)
    with pytest.raises(ValidationError) as raised:
        approval_vote(user=rita, action_id=action.pk, vote="deny", comment=comment)
    assert raised.value.message_dict == {"comment": ["Say why you deny it."]}
    assert _status(action) == "pending"
    assert not ApprovalVote.objects.exists()


@pytest.mark.parametrize("vote", ["approve", "deny"])
def test_a_comment_with_a_nul_character_is_refused_not_a_server_error(
    prod_token: AgentToken, rita: Any, vote: str
) -> None:
    """PostgreSQL's text refuses NUL: the vote is refused with a clear error instead."""
    action = _held(prod_token)
    page = Client()
    page.force_login(rita)
    url = reverse("approvals:vote", args=[action.pk])
    response = page.post(url, {"vote": vote, "comment": "no\x00pe"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert b"Null characters are not allowed." in response.content
    assert _status(action) == "pending"
    assert not ApprovalVote.objects.exists()


def test_an_approval_that_does_not_say_what_it_approves_is_refused(
    prod_token: AgentToken, rita: Any
) -> None:
    """The browser and the API always say which version of the action the person saw
    (``seen``, its request hash): an empty one is a form or a client that lost it."""
    action = _held(prod_token)
    with pytest.raises(ValidationError) as refused:
        approval_vote(user=rita, action_id=action.pk, vote="approve", seen="")
    assert list(refused.value.message_dict) == ["request_hash"]
    assert _status(action) == "pending"
    assert not ApprovalVote.objects.exists()
    denied = approval_vote(user=rita, action_id=action.pk, vote="deny", comment="no", seen="")
    assert denied.status == "rejected"  # a deny is safe whatever was seen


def test_an_unknown_vote_is_refused(prod_token: AgentToken, rita: Any) -> None:
    action = _held(prod_token)
    with pytest.raises(ValidationError):
        approval_vote(user=rita, action_id=action.pk, vote="abstain")
    assert _status(action) == "pending"


@pytest.mark.parametrize("person", ["teammate", "outsider", "reviewer", "auditor"])
def test_a_person_without_the_approve_permission_is_refused(
    request: pytest.FixtureRequest, prod_token: AgentToken, person: str
) -> None:
    user = request.getfixturevalue(person)  # `reviewer` here has no access to this agent
    action = _held(prod_token)
    for vote, comment in (("approve", ""), ("deny", "no")):
        with pytest.raises(PermissionDenied):
            approval_vote(user=user, action_id=action.pk, vote=vote, comment=comment)
    assert _status(action) == "pending"
    assert not ApprovalVote.objects.exists()
    assert not AuditEvent.objects.filter(verb="action.voted").exists()


def test_an_admin_decides_what_is_escalated_to_the_admins(
    prod_token: AgentToken, admin_user: Any
) -> None:
    action = _held(prod_token)
    with pytest.raises(PermissionDenied) as refused:
        approval_vote(user=admin_user, action_id=action.pk, vote="approve")
    assert str(refused.value) == (  # it read "Only anyone with approve access may decide"
        "This action is for anyone with approve access to decide; admins may decide it once "
        "it is escalated to them."
    )
    assert action_escalate(action_id=action.pk, reason="nobody answered")
    assert approval_vote(user=admin_user, action_id=action.pk, vote="approve").status == "approved"


def test_the_owner_cannot_approve_under_separation_of_duties(
    prod_token: AgentToken, agent: Agent, owner: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=owner, level="reviewer")
    action = _held(prod_token, separation_of_duties=True)
    assert action.separation_of_duties is True

    with pytest.raises(PermissionDenied, match="separation of duties"):
        approval_vote(user=owner, action_id=action.pk, vote="approve")
    assert _status(action) == "pending"
    assert not ApprovalVote.objects.exists()


def test_without_separation_of_duties_an_owner_with_approve_permission_may_approve(
    prod_token: AgentToken, agent: Agent, owner: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=owner, level="reviewer")
    action = _held(prod_token)
    assert approval_vote(user=owner, action_id=action.pk, vote="approve").status == "approved"


def test_a_vote_on_an_expired_action_is_refused_and_it_reads_expired(
    prod_token: AgentToken, rita: Any
) -> None:
    action = _held(prod_token)
    expire(action)

    with pytest.raises(ConflictError, match="already decided; its status now: expired"):
        approval_vote(user=rita, action_id=action.pk, vote="approve")
    assert not ApprovalVote.objects.exists()
    assert action_for_agent(token=prod_token, action_id=action.pk).status == "expired"


def test_a_refused_vote_on_an_expired_action_keeps_the_expiry_it_found(
    prod_token: AgentToken, agent: Agent, rita: Any
) -> None:
    # The vote finds the action past its time and says "it is expired"; the expiry (with
    # its audit event and the quota it gives back) must not be undone with the vote.
    limit_create(agent=agent, max_count=5)
    action = _held(prod_token)
    assert LimitCounter.objects.get().count == 1
    expire(action)

    with pytest.raises(ConflictError, match="expired"):
        approval_vote(user=rita, action_id=action.pk, vote="approve")
    assert _status(action) == "expired"
    assert AuditEvent.objects.filter(verb="action.expired", target_id=str(action.pk)).exists()
    assert LimitCounter.objects.get().count == 0


def test_a_deadline_that_passes_while_the_vote_waits_for_the_lock_expires_the_action(
    prod_token: AgentToken, rita: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing read before the action's row is locked decides the vote: the deadline is
    looked at again under the lock, so no approval lands after it."""
    action = _held(prod_token)
    lock = services.action_lock

    def the_deadline_passes_first(action_id: uuid.UUID) -> Action:
        expire(action)  # while the vote waits for the lock (another vote holds it)
        return lock(action_id)

    monkeypatch.setattr(services, "action_lock", the_deadline_passes_first)
    with pytest.raises(ConflictError, match="already decided; its status now: expired"):
        approval_vote(user=rita, action_id=action.pk, vote="approve")
    assert _status(action) == "expired"
    assert not ApprovalVote.objects.exists()
    assert AuditEvent.objects.filter(verb="action.expired", target_id=str(action.pk)).exists()


def test_a_vote_on_an_unknown_action_is_not_found(rita: Any) -> None:
    with pytest.raises(NotFoundError):
        approval_vote(user=rita, action_id=uuid.uuid4(), vote="approve")


def test_votes_are_audited(prod_token: AgentToken, agent: Agent, rita: Any, rob: Any) -> None:
    action = _held(prod_token, approvals=2)
    approval_vote(user=rita, action_id=action.pk, vote="approve")
    approval_vote(user=rob, action_id=action.pk, vote="deny", comment="  wrong customer ")

    first, second = AuditEvent.objects.filter(verb="action.voted").order_by("seq")
    assert (first.actor_label, first.actor_user_id) == ("rita", rita.pk)
    assert (first.target_id, first.agent_id) == (str(action.pk), agent.pk)
    assert first.before == {"status": "pending", "approvals": 0}
    assert first.after == {"status": "pending", "approvals": 1, "vote": "approve", "comment": ""}
    assert second.actor_label == "rob"
    assert second.before == {"status": "pending", "approvals": 1}
    assert second.after == {
        "status": "rejected",
        "approvals": 1,
        "vote": "deny",
        "comment": "wrong customer",
    }
    assert ApprovalVote.objects.get(voter=rob).comment == "wrong customer"


# --- concurrency ---------------------------------------------------------------------

VOTERS = 10


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_reviewers_voting_at_once_give_exactly_one_outcome(
    django_user_model: Any, prod_token: AgentToken, agent: Agent
) -> None:
    reviewers = []
    for n in range(VOTERS):
        user = make_user(django_user_model, f"reviewer-{n}", roles.REVIEWER)
        agent_access_grant(actor=SYSTEM, agent=agent, user=user, level="reviewer")
        reviewers.append(user)
    action = _held(prod_token)
    barrier = threading.Barrier(VOTERS)
    won: list[str] = []
    lost: list[ConflictError] = []
    errors: list[BaseException] = []

    def vote(user: Any) -> None:
        try:
            barrier.wait()
            won.append(approval_vote(user=user, action_id=action.pk, vote="approve").status)
        except ConflictError as exc:
            lost.append(exc)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=vote, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert won == ["approved"]
    assert len(lost) == VOTERS - 1
    told = "This action was already decided; its status now: approved."
    assert all(str(exc) == told for exc in lost)
    assert _status(action) == "approved"
    assert ApprovalVote.objects.filter(action=action).count() == 1
    voted = AuditEvent.objects.filter(verb="action.voted")
    assert [event.after["status"] for event in voted] == ["approved"]
