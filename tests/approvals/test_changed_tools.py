"""A call of an MCP tool whose definition changed is not approved one by one: until an
owner accepts the new definition, reviewers may deny it, not approve it (a reviewer's
approval would run the tool under a definition nobody accepted)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from oversight.agents.models import AgentToken, ToolPin
from oversight.agents.tool_pins import tool_pin_accept, tool_pins_record
from oversight.approvals.eligibility import TOOL_NOT_ACCEPTED
from oversight.approvals.services import approval_vote
from oversight.audit.actors import Actor
from oversight.gateway.models import Action
from oversight.notifications.content import action_held_payload, render_email, webhook_body
from tests.gateway.helpers import (
    decide,
    grant_refunds,
    hold_large_refunds,
    refund,
    refund_tool,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pin(agent: Any) -> ToolPin:
    """The refund tool, pinned, then seen with another description."""
    grant_refunds(agent)
    tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge.")])
    tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge and export the card.")])
    return ToolPin.objects.get(agent=agent)


@pytest.fixture
def held(pin: ToolPin, prod_token: AgentToken) -> Action:
    """A small refund, held only because its tool changed."""
    action = decide(prod_token, refund(100))
    assert action.status == "pending"
    assert [r["kind"] for r in action.reasons if r["effect"] == "hold"] == ["tool_pin"]
    return action


def _status(action: Action) -> str:
    return Action.objects.values_list("status", flat=True).get(pk=action.pk)


def test_a_reviewer_may_not_approve_it(rita: Any, held: Action) -> None:
    with pytest.raises(PermissionDenied) as refused:
        approval_vote(user=rita, action_id=held.pk, vote="approve")
    assert str(refused.value) == TOOL_NOT_ACCEPTED
    assert _status(held) == "pending"
    assert not held.votes.exists()


def test_nor_an_admin_it_was_escalated_to(admin_user: Any, held: Action) -> None:
    from oversight.approvals.escalation import action_escalate

    assert action_escalate(action_id=held.pk, reason="nobody answered")
    with pytest.raises(PermissionDenied, match="no owner has accepted the new one"):
        approval_vote(user=admin_user, action_id=held.pk, vote="approve")
    assert _status(held) == "pending"


def test_nor_with_edited_params(rita: Any, held: Action) -> None:
    with pytest.raises(PermissionDenied, match="no owner has accepted the new one"):
        approval_vote(user=rita, action_id=held.pk, vote="approve", params={"amount": 1})
    held.refresh_from_db()
    assert held.status == "pending" and held.params["amount"] == 100


def test_a_reviewer_may_deny_it(rita: Any, held: Action) -> None:
    approval_vote(user=rita, action_id=held.pk, vote="deny", comment="not with that tool")
    assert _status(held) == "rejected"


def test_a_call_held_by_a_rule_is_not_approved_while_its_tool_is_changed(
    agent: Any, pin: ToolPin, prod_token: AgentToken, rita: Any, owner: Any
) -> None:
    """Held by a rule and by the change: approvable once the owner accepted the new
    definition (the accept cancels only the calls held for the change alone)."""
    hold_large_refunds(agent)
    action = decide(prod_token, refund(900))
    assert {r["kind"] for r in action.reasons if r["effect"] == "hold"} == {"rule", "tool_pin"}
    with pytest.raises(PermissionDenied, match="no owner has accepted the new one"):
        approval_vote(user=rita, action_id=action.pk, vote="approve")

    tool_pin_accept(actor=Actor.for_user(owner), pin=pin, changed_hash=pin.changed_hash, user=owner)
    assert _status(action) == "pending"
    approval_vote(user=rita, action_id=action.pk, vote="approve")
    assert _status(action) == "approved"


def test_the_queue_offers_deny_and_points_to_the_owners_accept(
    client: Client, rita: Any, agent: Any, held: Action
) -> None:
    client.force_login(rita)
    page = client.get(reverse("approvals:queue")).content.decode()
    card = page[page.index(f'id="queue-{held.pk}"') :]
    card = card[: card.index("</article>")]
    assert 'value="deny"' in card
    assert 'value="approve"' not in card  # neither the button nor the edit form
    assert "data-tool-not-accepted" in card
    assert f'href="{reverse("agents:detail", args=[agent.slug])}#agent-tools"' in card
    assert "no one can approve it until its tool's new definition is accepted" in card
    assert "<strong>Who may deny:</strong>" in card and "Who may approve" not in card
    assert "<strong>changed tool definition</strong>" in card
    assert 'muted">allow</span>' not in card  # what holds it, not the grant that allows it

    page = client.get(reverse("approvals:queue") + "?view=list").content.decode()
    row = page[page.index(f'id="queue-{held.pk}"') :]
    row = row[: row.index("</li>")]
    assert 'value="approve"' not in row
    assert "its tool changed: not approvable" in row


def test_approving_in_place_is_refused_with_the_reason(
    client: Client, rita: Any, held: Action
) -> None:
    client.force_login(rita)
    url = reverse("approvals:vote", args=[held.pk])
    body = {"vote": "approve", "request_hash": held.request_hash}
    response = client.post(url, body, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert "no owner has accepted the new one" in response.content.decode()
    assert _status(held) == "pending"


def test_the_owner_sees_on_the_action_where_to_accept(
    client: Client, owner: Any, agent: Any, held: Action
) -> None:
    client.force_login(owner)
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert "data-tool-not-accepted" in page
    assert f'href="{reverse("agents:detail", args=[agent.slug])}#agent-tools"' in page
    assert '<span class="pill">tool pin</span>' in page and "tool_pin" not in page


def test_once_cancelled_by_the_accept_its_page_says_no_one_could_approve_it(
    client: Client, owner: Any, pin: ToolPin, held: Action
) -> None:
    """It read "Votes 0 of 1 · Who could approve: anyone with approve access"."""
    tool_pin_accept(actor=Actor.for_user(owner), pin=pin, changed_hash=pin.changed_hash, user=owner)
    assert _status(held) == "cancelled"
    client.force_login(owner)
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert (
        "Who could approve:</strong> no one: it was held only for its tool's changed"
        " definition, which an owner accepts on the agent's page"
    ) in page
    assert "anyone with approve access" not in page


def test_an_ordinary_held_call_is_approvable_as_before(
    client: Client, agent: Any, prod_token: AgentToken, rita: Any
) -> None:
    grant_refunds(agent)
    hold_large_refunds(agent)
    action = decide(prod_token, refund(900))
    client.force_login(rita)
    page = client.get(reverse("approvals:queue")).content.decode()
    assert 'value="approve"' in page and "data-tool-not-accepted" not in page
    approval_vote(user=rita, action_id=action.pk, vote="approve")
    assert _status(action) == "approved"


# --- who hears of it ---------------------------------------------------------------------


def test_the_owner_hears_of_the_change_and_the_reviewers_of_no_call_they_cannot_approve(
    agent: Any,
    owner: Any,
    rita: Any,
    prod_token: AgentToken,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from oversight.notifications.constants import Kind
    from oversight.notifications.models import InboxItem

    grant_refunds(agent)
    with django_capture_on_commit_callbacks(execute=True):
        tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge.")])
        tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge and export the card.")])
        tool_pins_record(agent=agent, tools=[refund_tool("Refund a charge and export the card.")])
        decide(prod_token, refund(100))  # held only for the change
    (told,) = InboxItem.objects.filter(kind=Kind.TOOL_CHANGED)
    assert told.user == owner
    assert told.title == "payments/refund of Refund bot changed its definition"
    assert told.link == reverse("agents:detail", args=[agent.slug]) + "#agent-tools"
    assert not InboxItem.objects.filter(user=rita).exists()


def test_once_accepted_the_reviewers_hear_of_a_call_a_rule_still_holds(
    agent: Any,
    pin: ToolPin,
    owner: Any,
    rita: Any,
    prod_token: AgentToken,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from oversight.notifications.constants import Kind
    from oversight.notifications.models import InboxItem

    hold_large_refunds(agent)
    with django_capture_on_commit_callbacks(execute=True):
        action = decide(prod_token, refund(900))  # held by the rule and by the change
    assert not InboxItem.objects.filter(user=rita).exists()
    with django_capture_on_commit_callbacks(execute=True):
        tool_pin_accept(
            actor=Actor.for_user(owner), pin=pin, changed_hash=pin.changed_hash, user=owner
        )
    (item,) = InboxItem.objects.filter(user=rita, kind=Kind.ACTION_HELD)
    assert item.event == f"{Kind.ACTION_HELD}:{action.pk}"
    # What holds it now: the rule, not the change an owner has accepted since.
    assert "Held by: large refunds." in item.body
    assert "tool definition" not in item.body
    assert [r["kind"] for r in Action.objects.get(pk=action.pk).deciding_reasons] == ["rule"]
    # So do the email and the chat message made now.
    payload = action_held_payload(Action.objects.get(pk=action.pk))
    assert [r["kind"] for r in payload["action"]["held_by"]] == ["rule"]
    _subject, email = render_email(payload)
    chat = webhook_body(payload, notification_id=1, timestamp=0).decode()
    for message in (email, json.loads(chat)["text"] + json.dumps(json.loads(chat)["blocks"])):
        assert "large refunds" in message and "tool definition" not in message, message
