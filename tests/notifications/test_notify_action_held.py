"""notify_action_held: who is told, on which channel, once, and only after commit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from oversight.approvals.escalation import actions_escalate_due
from oversight.notifications.models import Notification
from oversight.notifications.services import notify_action_held
from tests.notifications.conftest import hold, set_channels
from tests.notifications.receiver import Receiver

pytestmark = pytest.mark.django_db


def _notify(action: Any, capture: Any) -> list[Notification]:
    with capture(execute=True):
        return notify_action_held(action_id=action.pk)


def test_a_team_without_channels_is_told_nothing(
    held_action: Any, rita: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    assert _notify(held_action, django_capture_on_commit_callbacks) == []
    assert not Notification.objects.exists()
    assert mailoutbox == []


def test_a_team_with_every_channel_off_is_told_nothing(
    team: Any, held_action: Any, rita: Any, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=False, webhook_url="")
    assert _notify(held_action, django_capture_on_commit_callbacks) == []
    assert not Notification.objects.exists()


def test_each_reviewer_gets_an_email(
    team: Any,
    held_action: Any,
    rita: Any,
    gus: Any,
    viewer: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    created = _notify(held_action, django_capture_on_commit_callbacks)
    assert sorted(n.recipient for n in created) == ["gus@example.com", "rita@example.com"]
    assert sorted(m.to[0] for m in mailoutbox) == ["gus@example.com", "rita@example.com"]
    assert set(Notification.objects.values_list("state", "attempts")) == {("sent", 1)}


@override_settings(SITE_URL="https://oversight.example.com/")
def test_the_email_names_the_agent_and_action_and_links_to_it(
    team: Any,
    held_action: Any,
    rita: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    _notify(held_action, django_capture_on_commit_callbacks)
    (mail,) = mailoutbox
    assert "Approval needed: payments.refund on stripe:charge/ch_1" in mail.subject
    assert "Refund bot" in mail.subject
    for text in (
        "Refund bot (payments)",
        "payments.refund",
        "stripe:charge/ch_1",
        "production",
        "Customer was charged twice",
        "large refunds: params.amount > 500",
    ):
        assert text in mail.body
    # The link leads to the action's own page, absolute under SITE_URL.
    assert f"Review it: https://oversight.example.com/actions/{held_action.pk}/" in mail.body
    assert "4242" not in mail.body  # params stay behind the login


def test_reviewers_without_an_address_are_skipped_and_shared_addresses_told_once(
    team: Any,
    held_action: Any,
    rita: Any,
    gus: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    gus.email = "RITA@example.com"
    gus.save()
    set_channels(team, email=True)
    _notify(held_action, django_capture_on_commit_callbacks)
    assert [[a.lower() for a in m.to] for m in mailoutbox] == [["rita@example.com"]]


def test_the_webhook_gets_one_message(
    team: Any,
    held_action: Any,
    rita: Any,
    gus: Any,
    receiver: Receiver,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, webhook_url=receiver.url)
    (notification,) = _notify(held_action, django_capture_on_commit_callbacks)
    assert (notification.channel, notification.recipient) == ("webhook", "127.0.0.1")
    assert mailoutbox == []
    (received,) = receiver.received
    event = json.loads(received.body)["oversight"]
    assert event["event"] == "action.held"
    assert event["action"]["id"] == str(held_action.pk)
    assert event["agent"]["slug"] == "refund-bot"
    assert "params" not in event["action"]


def test_nothing_is_sent_before_commit(
    team: Any,
    held_action: Any,
    rita: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = notify_action_held(action_id=held_action.pk)
    assert len(callbacks) == len(created) == 1
    assert mailoutbox == []
    assert created[0].state == "pending"
    callbacks[0]()
    assert len(mailoutbox) == 1


def test_telling_the_same_action_twice_sends_nothing_more(
    team: Any,
    held_action: Any,
    rita: Any,
    receiver: Receiver,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True, webhook_url=receiver.url)
    assert len(_notify(held_action, django_capture_on_commit_callbacks)) == 2
    assert _notify(held_action, django_capture_on_commit_callbacks) == []
    assert Notification.objects.count() == 2
    assert len(mailoutbox) == 1
    assert len(receiver.received) == 1


@pytest.mark.parametrize("status", ["approved", "rejected", "expired", "cancelled", "denied"])
def test_an_action_no_longer_held_is_not_told(
    team: Any, agent: Any, rita: Any, status: str, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True)
    assert _notify(hold(agent, status=status), django_capture_on_commit_callbacks) == []


def test_an_unknown_action_is_not_an_error(django_capture_on_commit_callbacks: Any) -> None:
    import uuid

    assert notify_action_held(action_id=uuid.uuid4()) == []


def test_admins_are_told_when_nobody_holds_the_grant(
    team: Any,
    held_action: Any,
    admin_user: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Nobody may decide it, so it escalates to the admins (as the pipeline has it do
    after such a hold): the admins are then told, and are its approvers."""
    set_channels(team, email=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert actions_escalate_due(action_ids=[held_action.pk]) == 1
    held_action.refresh_from_db()
    _notify(held_action, django_capture_on_commit_callbacks)
    assert mailoutbox and all(m.to == ["ada@example.com"] for m in mailoutbox)
    assert any("escalated" in m.subject.lower() for m in mailoutbox)
    assert any("escalated" not in m.subject.lower() for m in mailoutbox)  # the held action
