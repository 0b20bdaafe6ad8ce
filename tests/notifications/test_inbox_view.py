"""The in-app inbox: the nav badge, the list, marking read; a person only sees their own."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from oversight.notifications.constants import Kind
from oversight.notifications.models import InboxItem
from oversight.notifications.services import notify_people

pytestmark = pytest.mark.django_db

INBOX = "/inbox/"


def _tell(team: Any, users: list[Any], event: str, title: str = "Review due") -> None:
    notify_people(
        kind=Kind.REVIEW_DUE,
        team=team,
        users=users,
        title=title,
        body="Re-certify it.",
        link="/agents/refund-bot/",
        event=event,
    )


def _csrf_client(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _token(client: Client) -> str:
    client.get(INBOX)
    return client.cookies["csrftoken"].value


def test_the_inbox_url_is_where_the_contract_says() -> None:
    assert reverse("inbox:list") == INBOX


def test_the_badge_shows_the_unread_count_on_every_page(
    client: Client, team: Any, owner: Any
) -> None:
    _tell(team, [owner], "e:1")
    _tell(team, [owner], "e:2")
    client.force_login(owner)
    page = client.get("/agents/").content.decode()
    assert 'id="inbox-badge" class="badge" aria-label="2 unread">2</span>' in page


def test_the_badge_is_hidden_with_nothing_unread(client: Client, owner: Any) -> None:
    client.force_login(owner)
    page = client.get("/agents/").content.decode()
    assert 'class="badge empty" aria-label="0 unread"></span>' in page


def test_the_badge_costs_one_count_query(client: Client, team: Any, owner: Any) -> None:
    _tell(team, [owner], "e:1")
    client.force_login(owner)
    with CaptureQueriesContext(connection) as queries:
        client.get("/agents/")
    inbox_queries = [q["sql"] for q in queries if "notifications_inboxitem" in q["sql"]]
    assert len(inbox_queries) == 1
    assert "COUNT(" in inbox_queries[0].upper()


def test_a_person_sees_only_their_own_items_newest_first(
    client: Client, team: Any, owner: Any, teammate: Any
) -> None:
    _tell(team, [owner], "e:1", title="Older one")
    _tell(team, [owner], "e:2", title="Newer one")
    _tell(team, [teammate], "e:3", title="Carol's own")
    client.force_login(owner)
    page = client.get(INBOX).content.decode()
    assert page.index("Newer one") < page.index("Older one")
    assert "Carol's own" not in page
    assert 'href="/agents/refund-bot/"' in page


def test_an_empty_inbox_says_so(client: Client, owner: Any) -> None:
    client.force_login(owner)
    page = client.get(INBOX).content.decode()
    assert "Nothing here yet" in page
    assert "Mark all read" not in page


def test_anonymous_people_are_sent_to_log_in(client: Client) -> None:
    response = client.get(INBOX)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_mark_read_with_htmx_swaps_the_item_and_the_badge(team: Any, owner: Any) -> None:
    _tell(team, [owner], "e:1")
    _tell(team, [owner], "e:2")
    item = InboxItem.objects.get(event="e:1")
    client = _csrf_client(owner)
    response = client.post(
        f"/inbox/{item.pk}/read/", HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=_token(client)
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="inbox-item-{item.pk}" class="inbox-item"' in html  # no longer unread
    assert "Mark read" not in html
    assert 'id="inbox-badge" class="badge" hx-swap-oob="true" aria-label="1 unread">1<' in html
    item.refresh_from_db()
    assert item.read_at is not None


def test_mark_read_without_htmx_goes_back_to_the_inbox(
    client: Client, team: Any, owner: Any
) -> None:
    _tell(team, [owner], "e:1")
    item = InboxItem.objects.get()
    client.force_login(owner)
    response = client.post(f"/inbox/{item.pk}/read/")
    assert (response.status_code, response["Location"]) == (302, INBOX)
    assert InboxItem.objects.get().read_at is not None


def test_marking_read_twice_keeps_the_first_time(client: Client, team: Any, owner: Any) -> None:
    _tell(team, [owner], "e:1")
    item = InboxItem.objects.get()
    client.force_login(owner)
    client.post(f"/inbox/{item.pk}/read/")
    first = InboxItem.objects.get().read_at
    client.post(f"/inbox/{item.pk}/read/")
    assert InboxItem.objects.get().read_at == first


def test_someone_elses_item_is_not_found_and_stays_unread(
    client: Client, team: Any, owner: Any, outsider: Any
) -> None:
    _tell(team, [owner], "e:1")
    item = InboxItem.objects.get()
    client.force_login(outsider)
    assert client.post(f"/inbox/{item.pk}/read/").status_code == 404
    assert InboxItem.objects.get().read_at is None


def test_mark_read_needs_post_and_csrf(team: Any, owner: Any) -> None:
    _tell(team, [owner], "e:1")
    item = InboxItem.objects.get()
    client = _csrf_client(owner)
    assert client.get(f"/inbox/{item.pk}/read/").status_code == 405
    assert client.post(f"/inbox/{item.pk}/read/").status_code == 403
    assert InboxItem.objects.get().read_at is None


def test_mark_all_read_marks_only_the_persons_own(
    client: Client, team: Any, owner: Any, teammate: Any
) -> None:
    _tell(team, [owner, teammate], "e:1")
    _tell(team, [owner], "e:2")
    client.force_login(owner)
    response = client.post("/inbox/read-all/", follow=True)
    assert "Marked 2 items read." in response.content.decode()
    assert not InboxItem.objects.filter(user=owner, read_at__isnull=True).exists()
    assert InboxItem.objects.get(user=teammate).read_at is None


def test_mark_all_read_needs_csrf(team: Any, owner: Any) -> None:
    _tell(team, [owner], "e:1")
    client = _csrf_client(owner)
    assert client.post("/inbox/read-all/").status_code == 403
    assert InboxItem.objects.get().read_at is None


def test_a_changed_tool_says_what_became_of_the_change_without_rewriting_the_item(
    client: Client,
    agent: Any,
    owner: Any,
    django_capture_on_commit_callbacks: Any,
    django_assert_max_num_queries: Any,
) -> None:
    """The item says calls are held until an owner accepts: true when it was told. Once
    accepted, the inbox adds what happened since (by whom), and keeps the words told;
    a second change waits anew and says nothing of the kind."""
    from oversight.agents.models import ToolPin
    from oversight.agents.tool_pins import tool_pin_accept, tool_pins_record
    from oversight.audit.actors import Actor
    from tests.gateway.helpers import refund_tool

    with django_capture_on_commit_callbacks(execute=True):
        tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge.")])
        tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge and export it.")])
    client.force_login(owner)
    page = client.get(INBOX).content.decode()
    assert "is held until an owner accepts the new definition" in page
    assert "data-now" not in page  # still waiting: what it says holds

    pin = ToolPin.objects.get(agent=agent)
    tool_pin_accept(actor=Actor.for_user(owner), pin=pin, changed_hash=pin.changed_hash, user=owner)
    with django_capture_on_commit_callbacks(execute=True):
        tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge, then export it.")])
    page = client.get(INBOX).content.decode()
    assert page.count("is held until an owner accepts the new definition") == 2  # as told
    assert page.count("data-now=") == 1  # the first change only
    assert '<p class="inbox-now" data-now="accepted">Since then: accepted by you' in page
    assert "its calls are no longer held for this change." in page
    first = InboxItem.objects.filter(kind=Kind.TOOL_CHANGED).order_by("pk").first()
    assert first is not None and "is held until" in first.body  # the item itself unchanged

    for n in range(5):  # more changed tools cost no more queries
        with django_capture_on_commit_callbacks(execute=True):
            tool_pins_record(agent=agent, tools=[refund_tool(f"Refund, version {n}.")])
    with django_assert_max_num_queries(12):
        client.get(INBOX)

    # Marked read in place, the item still says it.
    response = client.post(f"/inbox/{first.pk}/read/", HTTP_HX_REQUEST="true")
    assert 'data-now="accepted"' in response.content.decode()


def test_a_held_action_says_what_became_of_it_once_decided_or_withdrawn(
    client: Client,
    agent: Any,
    reviewer: Any,
    django_capture_on_commit_callbacks: Any,
    django_assert_max_num_queries: Any,
) -> None:
    """ "Approval needed" stays as told; once nobody needs to decide it any more, the
    inbox adds what became of it, so a reviewer does not go to decide what is done."""
    from oversight.agents.services import agent_access_grant, token_create
    from oversight.approvals.services import approval_vote
    from oversight.gateway.lifecycle import action_cancel
    from oversight.notifications.services import notify_action_held
    from tests.conftest import SYSTEM
    from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund

    grant_refunds(agent)
    hold_large_refunds(agent)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    held = [decide(token, refund(900 + n, charges=(f"ch_{n}",))) for n in range(3)]
    assert {action.status for action in held} == {"pending"}
    for action in held:
        with django_capture_on_commit_callbacks(execute=True):
            notify_action_held(action_id=action.pk)
    client.force_login(reviewer)
    page = client.get(INBOX).content.decode()
    assert page.count("Approval needed") == 3 and "data-now" not in page

    approval_vote(user=reviewer, action_id=held[0].pk, vote="approve")
    action_cancel(token=token, action_id=held[1].pk)
    with django_assert_max_num_queries(13):
        page = client.get(INBOX).content.decode()
    assert page.count("Approval needed") == 3  # as told
    assert 'data-now="approved">Since then: approved by you just now.</p>' in page
    assert 'data-now="cancelled">Since then: withdrawn before anyone decided it;' in page
    assert page.count("data-now=") == 2  # the third still waits

    # Denied by another: named, as the person who decided it.
    ada = get_user_model().objects.create_user("ada", first_name="Ada", last_name="Lovelace")
    agent_access_grant(actor=SYSTEM, agent=agent, user=ada, level="reviewer")
    approval_vote(user=ada, action_id=held[2].pk, vote="deny", comment="not this one")
    page = client.get(INBOX).content.decode()
    assert 'data-now="rejected">Since then: denied by Ada Lovelace just now;' in page


def test_a_release_awaiting_approval_says_once_it_was_approved_or_cancelled(
    client: Client, agent: Any, owner: Any, admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from oversight.accounts.services import team_change_control_update
    from oversight.audit.actors import Actor
    from oversight.policy.models import Rule
    from oversight.policy.services import policy_object_create
    from oversight.releases.models import Rollout
    from oversight.releases.rollouts import rollout_approve, rollout_cancel
    from tests.conftest import SYSTEM
    from tests.gateway.helpers import grant_refunds

    grant_refunds(agent)
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    alice = Actor.for_user(owner)

    def change(name: str) -> Rollout:
        with django_capture_on_commit_callbacks(execute=True):
            rule = Rule(agent=agent, name=name, effect="forbid", action="payments.refund")
            policy_object_create(actor=alice, obj=rule)
        return Rollout.objects.get(agent=agent, state="awaiting_approval")

    client.force_login(admin_user)
    rollout_cancel(actor=alice, rollout=change("no refunds"), why="not yet")
    page = client.get(INBOX).content.decode()
    assert 'data-now="cancelled">Since then: cancelled' in page
    waiting = change("no small refunds")
    page = client.get(INBOX).content.decode()
    assert page.count("awaits your approval") == 2 and page.count("data-now=") == 1
    rollout_approve(actor=Actor.for_user(admin_user), rollout=waiting)
    page = client.get(INBOX).content.decode()
    assert 'data-now="approved">Since then: approved by you.</p>' in page
    assert page.count("data-now=") == 2


def test_a_held_actions_since_names_every_approver_and_a_kill_switchs_cancelling(
    client: Client, agent: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Two approvals were needed: each approver's item named only the last ("approved by
    Rob", to Rita who approved first), and between the two votes Rita's still asked her
    to decide. An action a kill switch cancelled read "withdrawn
    before anyone decided it", as if its agent had withdrawn it."""
    from oversight.agents.services import agent_access_grant, token_create
    from oversight.approvals.services import approval_vote
    from oversight.killswitch.selectors import Target
    from oversight.killswitch.services import killswitch_engage
    from oversight.notifications.services import notify_action_held
    from tests.conftest import SYSTEM
    from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund

    grant_refunds(agent)
    hold_large_refunds(agent, approvals=2)
    rob = get_user_model().objects.create_user("rob", first_name="Rob", last_name="Reviewer")
    for person in (reviewer, rob):
        agent_access_grant(actor=SYSTEM, agent=agent, user=person, level="reviewer")
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    both, stopped = (decide(token, refund(900 + n, charges=(f"ch_{n}",))) for n in range(2))
    for action in (both, stopped):
        with django_capture_on_commit_callbacks(execute=True):
            notify_action_held(action_id=action.pk)
    approval_vote(user=reviewer, action_id=both.pk, vote="approve")
    # Between the two votes, hers is given: the item said "Approval needed" as if not.
    client.force_login(reviewer)
    page = client.get(INBOX).content.decode()
    waits = "Since then: you approved it just now; it waits for another person's approval."
    assert page.count(waits) == 1
    client.force_login(rob)
    assert waits not in client.get(INBOX).content.decode()  # his is still wanted
    approval_vote(user=rob, action_id=both.pk, vote="approve")

    client.force_login(reviewer)
    page = client.get(INBOX).content.decode()
    assert 'data-now="approved">Since then: approved by you and Rob Reviewer just now.' in page
    client.force_login(rob)
    page = client.get(INBOX).content.decode()
    name = reviewer.get_full_name() or reviewer.get_username()
    assert f'data-now="approved">Since then: approved by {name} and you just now.' in page

    # The switch cancels both: the held one, and the approved one not yet run.
    killswitch_engage(actor=SYSTEM, target=Target(scope="agent", agent=agent), reason="drill")
    page = client.get(INBOX).content.decode()
    cancelled = (
        'data-now="cancelled">Since then: cancelled (kill switch for agent Refund bot: drill);'
        " it no longer waits for you."
    )
    assert page.count(cancelled) == 2
