"""Signed decision links: they open the action for their person once, after login, and
decide nothing, grant nothing, and say clearly why when they no longer work."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core import signing
from django.test import Client
from django.utils import timezone

from oversight.approvals.models import ApprovalVote
from oversight.gateway.models import Action
from oversight.notifications.constants import DECISION_LINK_SALT
from oversight.notifications.links import decision_link_issue
from oversight.notifications.models import DecisionLink
from tests.conftest import SYSTEM
from tests.notifications.conftest import hold

pytestmark = pytest.mark.django_db

PASSWORD = "pw"  # tests/conftest.py's make_user


def _client(user: Any = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _link(user: Any, action: Action) -> str:
    return decision_link_issue(user=user, action=action, channel="email")


def test_it_opens_the_action_for_its_person_once(held_action: Action, rita: Any) -> None:
    link = _link(rita, held_action)
    response = _client(rita).get(link)
    assert response.status_code == 302
    assert response.url == f"/actions/{held_action.pk}/"
    assert DecisionLink.objects.get().used_at is not None
    # The page it leads to decides with a POST form, and shows the buttons.
    page = _client(rita).get(response.url).content.decode()
    assert 'name="vote" value="approve"' in page


def test_an_anonymous_visitor_logs_in_and_comes_back_to_the_link(
    held_action: Action, rita: Any
) -> None:
    link = _link(rita, held_action)
    client = _client()
    response = client.get(link)
    assert response.status_code == 302
    assert response.url == f"/login/?next={quote(link, safe='/')}"
    assert DecisionLink.objects.get().used_at is None  # not spent by an anonymous visit
    response = client.post("/login/", {"username": "rita", "password": PASSWORD, "next": link})
    assert response.url == link
    assert client.get(link).url == f"/actions/{held_action.pk}/"


def test_following_a_link_decides_nothing(held_action: Action, rita: Any) -> None:
    _client(rita).get(_link(rita, held_action))
    held_action.refresh_from_db()
    assert held_action.status == "pending"
    assert not ApprovalVote.objects.exists()


def test_a_used_link_says_so_and_still_offers_the_action(held_action: Action, rita: Any) -> None:
    link = _link(rita, held_action)
    client = _client(rita)
    client.get(link)
    response = client.get(link)
    assert response.status_code == 410
    page = response.content.decode()
    assert "This link was already used" in page
    assert f'href="/actions/{held_action.pk}/"' in page
    assert client.get(f"/actions/{held_action.pk}/").status_code == 200


def test_a_tampered_link_is_refused_and_spends_nothing(held_action: Action, rita: Any) -> None:
    link = _link(rita, held_action)
    token = link.split("/")[2]
    head, signature = token.rsplit(":", 1)
    forged = f"/links/{head}:{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}/"
    response = _client(rita).get(forged)
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()
    assert DecisionLink.objects.get().used_at is None


def test_a_link_signed_for_someone_else_cannot_be_forged(
    held_action: Action, rita: Any, gus: Any
) -> None:
    """Re-signing the payload with another key (or swapping the person) is refused."""
    _link(rita, held_action)
    row = DecisionLink.objects.get()
    payload = {"l": row.pk.hex, "u": gus.pk, "a": held_action.pk.hex}
    forged = signing.dumps(payload, key="not-our-secret", salt=DECISION_LINK_SALT)
    assert _client(gus).get(f"/links/{forged}/").status_code == 400
    # Signed with our key but naming another person than the row: not a link we sent.
    mixed = signing.dumps(payload, salt=DECISION_LINK_SALT)
    assert _client(gus).get(f"/links/{mixed}/").status_code == 400
    assert DecisionLink.objects.get().used_at is None


def test_another_person_logged_in_is_told_and_the_link_stays_unspent(
    held_action: Action, rita: Any, gus: Any
) -> None:
    link = _link(rita, held_action)
    response = _client(gus).get(link)
    assert response.status_code == 403
    page = response.content.decode()
    assert "This link was sent to someone else" in page
    assert "rita" in page and "Log in as rita" in page
    assert DecisionLink.objects.get().used_at is None
    # Gus may decide this agent's actions himself: the ordinary page lets him in.
    assert f'href="/actions/{held_action.pk}/"' in page
    # And the link still works for Rita.
    assert _client(rita).get(link).status_code == 302


def test_another_persons_link_tells_nothing_of_the_action_and_not_that_it_still_works(
    held_action: Action, rita: Any, gus: Any
) -> None:
    """It said "the action is Cancelled already" to anyone logged in, whether or not they
    may see the action; its own page says what they may see."""
    link = _link(rita, held_action)
    Action.objects.filter(pk=held_action.pk).update(status="cancelled")
    page = _client(gus).get(link).content.decode()
    assert "This link was sent to someone else" in page
    assert "only rita can use it" in page
    assert "still works" not in page and "Cancelled" not in page


def test_an_expired_link_says_so(held_action: Action, rita: Any) -> None:
    link = _link(rita, held_action)
    Action.objects.filter(pk=held_action.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    DecisionLink.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = _client(rita).get(link)
    assert response.status_code == 410
    assert "This link has expired" in response.content.decode()
    assert DecisionLink.objects.get().used_at is None


def test_a_link_to_a_decided_action_says_what_became_of_it(held_action: Action, rita: Any) -> None:
    link = _link(rita, held_action)
    Action.objects.filter(pk=held_action.pk).update(status="rejected")
    response = _client(rita).get(link)
    assert response.status_code == 410
    page = response.content.decode()
    assert "This action was already decided" in page
    assert "Denied by a reviewer" in page or "rejected" in page.lower()


def test_a_link_grants_no_permission(held_action: Action, rita: Any, agent: Any) -> None:
    """Access revoked after the link was sent: the link no longer opens anything, and the
    vote is refused as it would be without a link."""
    from oversight.agents.services import agent_access_revoke

    link = _link(rita, held_action)
    agent_access_revoke(actor=SYSTEM, agent=agent, user=rita)
    client = _client(rita)
    assert client.get(link).status_code == 404
    assert DecisionLink.objects.get().used_at is None
    response = client.post(f"/approvals/{held_action.pk}/vote/", {"vote": "approve"})
    assert response.status_code == 404
    held_action.refresh_from_db()
    assert held_action.status == "pending"


def test_an_anonymous_user_cannot_redeem_directly(held_action: Action, rita: Any) -> None:
    from oversight.notifications.links import Outcome, decision_link_redeem

    token = _link(rita, held_action).split("/")[2]
    assert decision_link_redeem(user=AnonymousUser(), token=token).outcome == Outcome.FOREIGN


def test_two_tabs_spend_a_link_once(held_action: Action, rita: Any) -> None:
    from oversight.notifications.links import Outcome, decision_link_redeem

    token = _link(rita, held_action).split("/")[2]
    outcomes = [decision_link_redeem(user=rita, token=token).outcome for _ in range(2)]
    assert outcomes == [Outcome.OPEN, Outcome.USED]


def test_each_link_is_its_own(held_action: Action, rita: Any) -> None:
    """Two links to the same person (email and inbox) are spent separately."""
    first, second = _link(rita, held_action), _link(rita, held_action)
    assert first != second
    client = _client(rita)
    assert client.get(first).status_code == 302
    assert client.get(second).status_code == 302


def test_a_link_expires_with_its_action(agent: Any, rita: Any) -> None:
    action = hold(agent, expires_at=timezone.now() + dt.timedelta(minutes=7))
    _link(rita, action)
    assert DecisionLink.objects.get().expires_at == action.expires_at


def test_following_the_inbox_link_marks_its_item_read(
    held_action: Action, rita: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from oversight.notifications.models import InboxItem
    from oversight.notifications.services import notify_action_held

    with django_capture_on_commit_callbacks(execute=True):
        notify_action_held(action_id=held_action.pk)
    item = InboxItem.objects.get(user=rita)
    assert item.unread
    _client(rita).get(item.link)
    item.refresh_from_db()
    assert not item.unread
