"""notify_people: an inbox item per active person, email and webhook by the team's channels,
each told once per event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from oversight.notifications.constants import Kind
from oversight.notifications.models import InboxItem, Notification, TeamChannels
from oversight.notifications.services import notify_people
from oversight.notifications.signing import signature_valid
from tests.notifications.conftest import set_channels
from tests.notifications.receiver import Receiver

pytestmark = pytest.mark.django_db

LINK = "/agents/refund-bot/"


def _notify(capture: Any, **overrides: Any) -> list[Notification]:
    values: dict[str, Any] = {
        "kind": Kind.REVIEW_DUE,
        "title": "Review of Refund bot due in 7 days",
        "body": "Re-certify its purpose and access.",
        "link": LINK,
        "event": "review.due:refund-bot:2026-05-01",
    }
    values.update(overrides)
    with capture(execute=True):
        return notify_people(**values)


def test_each_person_gets_one_inbox_item_even_without_channels(
    team: Any, agent: Any, owner: Any, teammate: Any, django_capture_on_commit_callbacks: Any
) -> None:
    created = _notify(
        django_capture_on_commit_callbacks, team=team, users=[owner, teammate], agent=agent
    )
    assert created == []  # no channels: nothing to send
    items = InboxItem.objects.order_by("user__username")
    assert [i.user.username for i in items] == ["alice", "carol"]
    item = items[0]
    assert (item.kind, item.title, item.link, item.agent, item.team) == (
        "review.due",
        "Review of Refund bot due in 7 days",
        LINK,
        agent,
        team,
    )
    assert item.body == "Re-certify its purpose and access."
    assert item.unread


def test_the_same_event_twice_creates_nothing_new(
    team: Any,
    owner: Any,
    receiver: Receiver,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True, webhook_url=receiver.url)
    first = _notify(django_capture_on_commit_callbacks, team=team, users=[owner])
    again = _notify(django_capture_on_commit_callbacks, team=team, users=[owner])
    assert sorted(n.channel for n in first) == ["email", "webhook"]
    assert again == []
    assert InboxItem.objects.count() == 1
    assert len(mailoutbox) == 1
    assert len(receiver.received) == 1


def test_a_new_event_is_told_again(
    team: Any, owner: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True)
    _notify(django_capture_on_commit_callbacks, team=team, users=[owner], event="e:1")
    _notify(django_capture_on_commit_callbacks, team=team, users=[owner], event="e:2")
    assert InboxItem.objects.count() == 2
    assert len(mailoutbox) == 2


@override_settings(SITE_URL="https://oversight.example.com/")
def test_email_only_when_the_team_has_email_on_and_to_people_with_an_address(
    team: Any,
    agent: Any,
    owner: Any,
    teammate: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=False)
    _notify(django_capture_on_commit_callbacks, team=team, users=[owner], event="off")
    assert mailoutbox == []

    set_channels(team, email=True)
    teammate.email = ""
    teammate.save()
    created = _notify(
        django_capture_on_commit_callbacks, team=team, users=[owner, teammate], agent=agent
    )
    assert [n.recipient for n in created] == ["alice@example.com"]
    (mail,) = mailoutbox
    assert mail.to == ["alice@example.com"]
    assert mail.subject == "[Oversight] Review of Refund bot due in 7 days"
    assert "Re-certify its purpose and access." in mail.body
    assert "Agent: Refund bot (payments)" in mail.body
    assert f"Open it: https://oversight.example.com{LINK}" in mail.body
    # The person without an address still sees it in the app.
    assert InboxItem.objects.filter(user=teammate).exists()


def test_two_people_sharing_an_address_get_one_email(
    team: Any, owner: Any, teammate: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True)
    teammate.email = "ALICE@example.com"
    teammate.save()
    _notify(django_capture_on_commit_callbacks, team=team, users=[owner, teammate])
    assert len(mailoutbox) == 1
    assert InboxItem.objects.count() == 2


@override_settings(SITE_URL="https://oversight.example.com")
def test_the_webhook_message_is_signed_like_the_others(
    team: Any, agent: Any, owner: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, webhook_url=receiver.url)
    (created,) = _notify(
        django_capture_on_commit_callbacks,
        kind=Kind.ALERT_OPENED,
        team=team,
        users=[owner],
        agent=agent,
        title="Volume far above baseline",
        body="120 actions in a minute (baseline 4).",
        event="alert.opened:17",
    )
    assert (created.channel, created.state) == ("webhook", "pending")
    (received,) = receiver.received
    secret = TeamChannels.objects.get(team=team).webhook_secret
    assert signature_valid(received.body, secret, received.headers["X-Oversight-Signature"])
    body = json.loads(received.body)
    assert body["text"] == "Volume far above baseline"
    assert "120 actions in a minute" in body["blocks"][0]["text"]["text"]
    event = body["oversight"]
    assert event["event"] == "alert.opened"
    assert event["agent"]["slug"] == "refund-bot"
    assert event["url"] == f"https://oversight.example.com{LINK}"
    assert Notification.objects.get().state == "sent"


def test_webhook_false_leaves_the_webhook_out(
    team: Any, owner: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True, webhook_url=receiver.url)
    created = _notify(django_capture_on_commit_callbacks, team=team, users=[owner], webhook=False)
    assert [n.channel for n in created] == ["email"]
    assert receiver.received == []


def test_inactive_people_get_nothing(
    team: Any, owner: Any, teammate: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True)
    teammate.is_active = False
    teammate.save()
    _notify(django_capture_on_commit_callbacks, team=team, users=[owner, teammate])
    assert list(InboxItem.objects.values_list("user__username", flat=True)) == ["alice"]
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]


def test_sends_wait_for_the_callers_commit(
    team: Any, owner: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True)
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            notify_people(
                kind=Kind.AGENT_PAUSED,
                team=team,
                users=[owner],
                title="Refund bot paused",
                body="",
                link=LINK,
                event="agent.paused:refund-bot:1",
            )
        assert mailoutbox == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert len(mailoutbox) == 1


def test_a_long_title_is_shortened(
    team: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _notify(django_capture_on_commit_callbacks, team=team, users=[owner], title="x" * 500)
    title = InboxItem.objects.get().title
    assert len(title) == 200 and title.endswith("…")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kind", Kind.ACTION_HELD, "does not send"),
        ("kind", "nonsense", "does not send"),
        ("link", "https://evil.example/", "path on this site"),
        ("link", "//evil.example/", "path on this site"),
        ("event", "", "name the event"),
        ("event", "e" * 201, "name the event"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    team: Any,
    owner: Any,
    field: str,
    value: str,
    message: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    with pytest.raises(ValueError, match=message):
        _notify(django_capture_on_commit_callbacks, team=team, users=[owner], **{field: value})
    assert not InboxItem.objects.exists()
    assert not Notification.objects.exists()
