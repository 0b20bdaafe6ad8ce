"""Held actions in the eligible approvers' inboxes and mail, one by one and then digested."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import signing
from django.test import Client

from oversight.approvals.eligibility import eligible_approvers
from oversight.approvals.models import ApprovalVote
from oversight.notifications.constants import DECISION_LINK_SALT, DIGEST_AFTER, Kind
from oversight.notifications.models import DecisionLink, InboxItem, Notification
from oversight.notifications.services import notify_action_held
from tests.notifications.conftest import hold, set_channels
from tests.notifications.receiver import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("one_digest_window")]


def _held(agent: Any, capture: Any, n: int = 1) -> list[Any]:
    actions = []
    for i in range(n):
        action = hold(agent, resource=f"stripe:charge/ch_{i}")
        with capture(execute=True):
            notify_action_held(action_id=action.pk)
        actions.append(action)
    return actions


def named_link(path: str) -> dict[str, object]:
    """What a link's path names, read back with its signature checked. (Not compared as
    text with a fresh token: tokens carry the second they were signed in.)"""
    token = path.removeprefix("/links/").removesuffix("/")
    return signing.loads(token, salt=DECISION_LINK_SALT)


def link_payload(link: DecisionLink) -> dict[str, object]:
    return {"l": link.pk.hex, "u": link.user_id, "a": link.action_id.hex}


# --- who --------------------------------------------------------------------------------


def test_eligible_approvers_are_the_reviewers_without_those_who_voted(
    held_action: Any, rita: Any, gus: Any, viewer: Any
) -> None:
    assert eligible_approvers(held_action) == [gus, rita]  # by username
    ApprovalVote.objects.create(action=held_action, voter=rita, vote="approve")
    assert eligible_approvers(held_action) == [gus]


def test_separation_of_duties_leaves_the_owner_out(
    agent: Any, owner: Any, rita: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from oversight.agents.services import agent_access_grant
    from tests.conftest import SYSTEM

    agent_access_grant(actor=SYSTEM, agent=agent, user=owner, level="reviewer")
    assert owner in eligible_approvers(hold(agent))
    separated = hold(agent, separation_of_duties=True)
    assert eligible_approvers(separated) == [rita]
    with django_capture_on_commit_callbacks(execute=True):
        notify_action_held(action_id=separated.pk)
    assert not InboxItem.objects.filter(user=owner, kind=Kind.ACTION_HELD).exists()


# --- the inbox ------------------------------------------------------------------------------


def test_each_approver_gets_an_item_with_their_own_link(
    held_action: Any, rita: Any, gus: Any, viewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        notify_action_held(action_id=held_action.pk)
    items = {i.user: i for i in InboxItem.objects.all()}
    assert set(items) == {rita, gus}  # not the viewer, not the owner
    item = items[rita]
    assert item.kind == Kind.ACTION_HELD
    assert item.title == "Approval needed: payments.refund on stripe:charge/ch_1 (Refund bot)"
    assert "Customer was charged twice" in item.body and "large refunds" in item.body
    assert item.link.startswith("/links/")
    assert items[gus].link != item.link
    assert set(DecisionLink.objects.values_list("user", "channel")) == {
        (rita.pk, "inbox"),
        (gus.pk, "inbox"),
    }
    # Nobody told by email or webhook: the team has no channels.
    assert not Notification.objects.exists()


def test_telling_twice_creates_nothing_new(
    held_action: Any, rita: Any, team: Any, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            notify_action_held(action_id=held_action.pk)
    assert InboxItem.objects.count() == 1
    assert Notification.objects.count() == 1
    assert DecisionLink.objects.count() == 2  # one in the inbox, one in the email


def test_many_held_actions_become_one_digest_that_keeps_count(
    agent: Any, rita: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _held(agent, django_capture_on_commit_callbacks, n=DIGEST_AFTER + 9)
    singles = InboxItem.objects.filter(user=rita, kind=Kind.ACTION_HELD)
    assert singles.count() == DIGEST_AFTER
    (digest,) = InboxItem.objects.filter(user=rita, kind=Kind.ACTIONS_WAITING)
    assert digest.title == f"{DIGEST_AFTER + 9} actions of Refund bot are waiting for approval"
    assert digest.link == "/approvals/"
    assert digest.unread


def test_a_digest_says_how_many_of_its_actions_wait_now(
    agent: Any, rita: Any, gus: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The digest counts when it was told; once people decide some, the inbox says how
    many wait now, and once none does, that it no longer waits for its person."""
    from oversight.approvals.services import approval_vote

    actions = _held(agent, django_capture_on_commit_callbacks, n=DIGEST_AFTER + 2)
    client = Client()
    client.force_login(rita)
    total = len(actions)
    assert f"{total} actions of Refund bot are waiting" in client.get("/inbox/").content.decode()
    for action in actions[:-1]:
        approval_vote(user=gus, action_id=action.pk, vote="deny", comment="not now")
    page = client.get("/inbox/").content.decode()
    assert f"{total} actions of Refund bot are waiting" in page  # the item is not rewritten
    assert "Since then: 1 waits now." in page
    approval_vote(user=gus, action_id=actions[-1].pk, vote="deny", comment="not now")
    page = client.get("/inbox/").content.decode()
    assert "Since then: none of them waits now; it no longer waits for you." in page


def test_a_read_digest_becomes_unread_and_newest_when_more_come(
    agent: Any, rita: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _held(agent, django_capture_on_commit_callbacks, n=DIGEST_AFTER + 1)
    InboxItem.objects.update(read_at="2026-01-01T00:00:00Z")
    _held(agent, django_capture_on_commit_callbacks, n=1)
    newest = InboxItem.objects.filter(user=rita).order_by("-created_at", "-id").first()
    assert newest.kind == Kind.ACTIONS_WAITING
    assert newest.unread
    assert newest.title.startswith(f"{DIGEST_AFTER + 2} actions")


@pytest.mark.slow
@pytest.mark.postgres
def test_a_thousand_held_actions_keep_the_inbox_readable(
    agent: Any, rita: Any, team: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True)
    _held(agent, django_capture_on_commit_callbacks, n=1000)
    assert InboxItem.objects.filter(user=rita).count() == DIGEST_AFTER + 1
    assert InboxItem.objects.get(kind=Kind.ACTIONS_WAITING).title.startswith("1000 actions")
    # Mail follows the same rule: the first few one by one, then one digest.
    assert len(mailoutbox) == DIGEST_AFTER + 1
    assert "are waiting for approval" in mailoutbox[-1].subject


# --- email and chat -------------------------------------------------------------------------


def test_each_email_carries_its_persons_link(
    held_action: Any,
    rita: Any,
    gus: Any,
    team: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    with django_capture_on_commit_callbacks(execute=True):
        notify_action_held(action_id=held_action.pk)
    by_address = {m.to[0]: m.body for m in mailoutbox}
    paths = {}
    for person in (rita, gus):
        (line,) = [x for x in by_address[person.email].splitlines() if x.startswith("Decide")]
        paths[person] = line.removeprefix("Decide it: http://127.0.0.1:8000")
    assert paths[rita] != paths[gus]
    (link,) = DecisionLink.objects.filter(user=rita, channel="email")
    assert named_link(paths[rita]) == link_payload(link)
    client = Client()
    client.force_login(rita)
    assert client.get(paths[rita]).url == f"/actions/{held_action.pk}/"
    link.refresh_from_db()
    assert link.used_at is not None


def test_the_chat_message_carries_a_link_per_approver(
    held_action: Any,
    rita: Any,
    gus: Any,
    team: Any,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, webhook_url=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        notify_action_held(action_id=held_action.pk)
    (request,) = receiver.received
    body = json.loads(request.body)
    links = body["oversight"]["action"]["links"]
    assert [link["user"] for link in links] == ["gus", "rita"]  # by username
    assert all(link["url"].startswith("http://127.0.0.1:8000/links/") for link in links)
    text = body["blocks"][0]["text"]["text"]
    assert "Decide with your own link: <http://127.0.0.1:8000/links/" in text
    assert "|rita>" in text and "|gus>" in text


def test_the_chat_is_digested_too(
    agent: Any,
    rita: Any,
    team: Any,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, webhook_url=receiver.url)
    _held(agent, django_capture_on_commit_callbacks, n=DIGEST_AFTER + 5)
    events = [json.loads(r.body)["oversight"]["event"] for r in receiver.received]
    assert events == [Kind.ACTION_HELD.value] * DIGEST_AFTER + [Kind.ACTIONS_WAITING.value]


def test_what_held_it_is_named_everywhere_and_the_grant_beside_it_nowhere(
    agent: Any,
    rita: Any,
    team: Any,
    mailoutbox: list,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A limit that holds on exceed (or a changed tool) holds an action its grant allows:
    its reasons are the grant's, then the hold's. A reviewer is told of the hold only,
    in the inbox, the email and the chat; the webhook's payload keeps every reason."""
    grant = {
        "kind": "grant",
        "id": 7,
        "name": "payments.refund on stripe:charge/*",
        "effect": "allow",
        "detail": "granted payments.refund on stripe:charge/*",
    }
    limit = {
        "kind": "limit",
        "id": 3,
        "name": "refund volume",
        "effect": "hold",
        "detail": "101 of 100 refunds in 1h",
    }
    action = hold(agent, reasons=[grant, limit])
    set_channels(team, email=True, webhook_url=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        notify_action_held(action_id=action.pk)
    (item,) = InboxItem.objects.filter(user=rita, kind=Kind.ACTION_HELD)
    assert "Held by: refund volume." in item.body
    assert "stripe:charge/*" not in item.body
    (mail,) = [m for m in mailoutbox if m.to == [rita.email]]
    assert "Why it was held:\n- refund volume: 101 of 100 refunds in 1h\n" in mail.body
    assert "granted payments.refund" not in mail.body
    (request,) = receiver.received
    body = json.loads(request.body)
    text = body["blocks"][0]["text"]["text"]
    assert "• refund volume: 101 of 100 refunds in 1h" in text
    assert "granted payments.refund" not in text
    assert [r["name"] for r in body["oversight"]["action"]["reasons"]] == [
        "payments.refund on stripe:charge/*",
        "refund volume",
    ]
