"""Escalation: a held action nobody eligible can decide, or nobody answered by half its
time, goes to the admins at once, visibly, once."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.accounts import roles
from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import agent_access_grant, agent_access_revoke, token_create
from oversight.approvals.eligibility import eligible_approvers
from oversight.approvals.escalation import actions_escalate_due
from oversight.approvals.services import approval_vote
from oversight.approvals.tasks import escalate_held_actions
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.notifications.models import InboxItem
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import decide, refund, refund_policy_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(agent: Agent) -> AgentToken:
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


@pytest.fixture
def held(agent: Agent, token: AgentToken, reviewer: Any, admin_user: Any) -> Action:
    """A refund held for one approval, which only rita may give."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    refund_policy_create(agent)
    action = decide(token, refund(900))
    assert action.status == "pending" and action.escalated_at is None
    return action


def _escalations(action: Action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb="action.escalated", target_id=str(action.pk)))


def test_revoking_the_only_reviewer_escalates_at_once_to_the_admins(
    agent: Agent,
    held: Action,
    reviewer: Any,
    admin_user: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        agent_access_revoke(actor=SYSTEM, agent=agent, user=reviewer)
    held.refresh_from_db()
    assert held.escalated_at is not None
    assert held.escalation_reason.startswith("nobody eligible can decide it (0 eligible")
    (event,) = _escalations(held)
    assert event.after == {"escalated": True, "why": held.escalation_reason, "to": "admins"}
    item = InboxItem.objects.get(user=admin_user, kind="action.escalated")
    assert item.link == f"/actions/{held.pk}/"
    assert [u.username for u in eligible_approvers(held)] == ["ada"]
    assert approval_vote(user=admin_user, action_id=held.pk, vote="approve").status == "approved"


def test_a_held_action_nobody_can_decide_escalates_when_it_is_held(
    agent: Agent, token: AgentToken, admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from oversight.policy.models import Limit
    from oversight.policy.services import policy_object_create
    from tests.gateway.helpers import grant_refunds

    grant_refunds(agent)  # no hold rule: a limit holds, and nobody has approve access
    policy_object_create(
        actor=SYSTEM,
        obj=Limit(agent=agent, name="one", window_seconds=3600, max_count=1, on_exceed="hold"),
    )
    decide(token, refund(10))
    with django_capture_on_commit_callbacks(execute=True):
        action = decide(token, refund(10))
    action.refresh_from_db()
    assert action.status == "pending" and action.escalated_at is not None
    assert len(_escalations(action)) == 1


def test_an_action_unanswered_at_half_its_time_escalates_once(
    held: Action, admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    assert escalate_held_actions() == 0  # just held, rita can decide it
    lifetime = held.expires_at - held.created_at
    Action.objects.filter(pk=held.pk).update(
        created_at=held.created_at - lifetime / 2 - dt.timedelta(seconds=1),
        expires_at=held.expires_at - lifetime / 2 - dt.timedelta(seconds=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert escalate_held_actions() == 1
        assert escalate_held_actions() == 0  # idempotent
    held.refresh_from_db()
    assert held.escalation_reason == "unanswered at half its time"
    assert len(_escalations(held)) == 1
    assert InboxItem.objects.filter(user=admin_user, kind="action.escalated").count() == 1


def test_a_flood_of_escalations_reaches_an_admin_as_one_digest_that_keeps_count(
    agent: Agent,
    token: AgentToken,
    reviewer: Any,
    admin_user: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """316 actions escalated at half their time gave the one admin 316 inbox items and 316
    emails; held and expired ones were digested after DIGEST_AFTER, these never."""
    from oversight.notifications.constants import DIGEST_AFTER
    from oversight.notifications.models import Notification
    from tests.notifications.conftest import set_channels

    set_channels(agent.team, email=True)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    refund_policy_create(agent)
    held = [decide(token, refund(900 + n)) for n in range(DIGEST_AFTER + 4)]
    half = timezone.now() - dt.timedelta(hours=1)
    Action.objects.filter(pk__in=[a.pk for a in held]).update(created_at=half)
    with django_capture_on_commit_callbacks(execute=True):
        assert escalate_held_actions() == DIGEST_AFTER + 4
    singles = InboxItem.objects.filter(user=admin_user, kind="action.escalated")
    assert singles.count() == DIGEST_AFTER
    digest = InboxItem.objects.get(user=admin_user, kind="action.escalated.digest")
    assert digest.title == "7 held actions of Refund bot escalated to admins this hour"
    assert "7 of them still wait" in digest.body and digest.link == "/approvals/"
    emails = Notification.objects.filter(kind__startswith="action.escalated", channel="email")
    assert emails.count() == DIGEST_AFTER + 1  # one per single, one for the digest


def test_the_card_and_the_action_page_say_who_may_approve_and_that_it_escalated(
    client: Client,
    agent: Agent,
    held: Action,
    reviewer: Any,
    admin_user: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(reviewer)
    page = client.get(reverse("approvals:queue")).content.decode()
    assert "<strong>Who may approve:</strong> anyone with approve access: rita</p>" in page
    assert "1 more needed" in page
    with django_capture_on_commit_callbacks(execute=True):
        agent_access_revoke(actor=SYSTEM, agent=agent, user=reviewer)
    client.force_login(admin_user)
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert "Escalated to admins" in page and "nobody eligible can decide it" in page


# --- concurrency ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_escalations_racing_each_other_escalate_once(
    agent: Agent, token: AgentToken, django_user_model: Any
) -> None:
    make_user(django_user_model, "ada", roles.ADMIN)
    rita = make_user(django_user_model, "rita", roles.REVIEWER)
    agent_access_grant(actor=SYSTEM, agent=agent, user=rita, level="reviewer")
    refund_policy_create(agent)
    action = decide(token, refund(900))
    Action.objects.filter(pk=action.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    racers = 6
    barrier = threading.Barrier(racers)
    counts: list[int] = []
    errors: list[BaseException] = []

    def escalate() -> None:
        try:
            barrier.wait()
            counts.append(actions_escalate_due())
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=escalate) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(counts) == [0] * (racers - 1) + [1]
    assert len(_escalations(action)) == 1
    assert InboxItem.objects.filter(kind="action.escalated").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_vote_racing_an_escalation_is_counted_once(
    agent: Agent, token: AgentToken, django_user_model: Any
) -> None:
    make_user(django_user_model, "ada", roles.ADMIN)
    rita = make_user(django_user_model, "rita", roles.REVIEWER)
    agent_access_grant(actor=SYSTEM, agent=agent, user=rita, level="reviewer")
    refund_policy_create(agent)
    action = decide(token, refund(900))
    Action.objects.filter(pk=action.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(fn: Any) -> None:
        try:
            barrier.wait()
            fn()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(actions_escalate_due,)),
        threading.Thread(
            target=run,
            args=(lambda: approval_vote(user=rita, action_id=action.pk, vote="approve"),),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    action.refresh_from_db()
    assert action.status == "approved"
    assert AuditEvent.objects.filter(verb="action.voted").count() == 1
    assert len(_escalations(action)) <= 1  # escalated before the vote, or not at all
