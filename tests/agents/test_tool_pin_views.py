"""The agent's page lists its pinned MCP tools; the owner accepts a changed definition."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.models import ToolPin
from oversight.agents.services import token_create
from oversight.agents.tool_pins import SeenTool, tool_pins_record
from oversight.audit.models import AuditEvent
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide

pytestmark = pytest.mark.django_db


def _seen(description: str) -> SeenTool:
    return SeenTool(
        server="payments",
        name="refund",
        action="mcp.payments.refund",
        description=description,
        input_schema={"type": "object"},
    )


@pytest.fixture
def pin(agent: Any) -> ToolPin:
    tool_pins_record(agent=agent, tools=[_seen("Refund a charge.")])
    tool_pins_record(agent=agent, tools=[_seen("Refund a charge and export the card.")])
    return ToolPin.objects.get(agent=agent)


def _accept(client: Client, agent: Any, pin: ToolPin, changed_hash: str | None = None) -> Any:
    url = reverse("agents:tool-accept", args=[agent.slug, pin.pk])
    return client.post(url, {"changed_hash": changed_hash or pin.changed_hash})


def test_the_page_shows_the_pinned_and_the_changed_definition(
    client: Client, teammate: Any, agent: Any, pin: ToolPin
) -> None:
    client.force_login(teammate)
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert "payments/refund" in page
    assert "Refund a charge." in page and "export the card" in page
    assert "Accept new definition" not in page  # a teammate may view, not accept
    # Only the lines that differ are marked, each side in its own colour.
    assert re.search(
        r'<del class="diff-line">\s*&quot;description&quot;: &quot;Refund a charge\.&quot;,</del>',
        page,
    )
    assert re.search(
        r'<ins class="diff-line">\s*&quot;description&quot;: &quot;[^<]*export the card', page
    )
    assert page.count('class="diff-line"') == 2
    # Said at the top of the page, pointing to the section.
    assert (
        '<p class="callout" role="status" data-tools-changed>1 MCP tool changed its definition'
        in page
    )
    assert 'in <a href="#agent-tools">MCP tools</a>' in page


def test_the_owner_accepts_the_new_definition(
    client: Client, owner: Any, agent: Any, pin: ToolPin
) -> None:
    client.force_login(owner)
    response = _accept(client, agent, pin)
    assert response.status_code == 302
    pin.refresh_from_db()
    agent.refresh_from_db()
    assert not pin.changed and pin.definition["description"].endswith("export the card.")
    assert pin.accepted_by == owner
    assert agent.changed_tools == []
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert "data-tools-changed" not in page
    assert " by Alice</span>" in page  # by name, as the page names people elsewhere
    event = AuditEvent.objects.get(verb="tool.accepted")
    assert event.before["description"] == "Refund a charge."


def test_the_owner_sees_the_calls_waiting_and_what_accepting_did_to_them(
    client: Client, owner: Any, agent: Any, pin: ToolPin
) -> None:
    policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action=pin.action, resource="stripe:charge/*")
    )
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    body = {"action": pin.action, "resource": "stripe:charge/ch_1", "params": {"amount": 5}}
    held = decide(token, body)
    assert held.status == "pending"

    client.force_login(owner)
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    link = reverse("approvals:action", args=[held.pk])
    assert '<div class="small" data-waiting="1">1 call waiting:' in page
    assert f'<a class="mono" href="{link}">stripe:charge/ch_1</a>' in page
    assert "Calls held only for the change are then cancelled" in page

    page = client.get(_accept(client, agent, pin).url).content.decode()
    assert "Accepted the new definition of payments/refund; 1 call held only for the change" in page
    held.refresh_from_db()
    assert held.status == "cancelled"
    assert "data-waiting" not in page


def test_a_changed_tool_lists_its_five_oldest_waiting_calls_and_counts_them_all(
    agent: Any, pin: ToolPin, django_assert_num_queries: Any
) -> None:
    from oversight.agents.selectors import tool_pin_rows

    policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action=pin.action, resource="stripe:charge/*")
    )
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    held = [
        decide(token, {"action": pin.action, "resource": f"stripe:charge/ch_{i}", "params": {}})
        for i in range(7)
    ]
    with django_assert_num_queries(2):  # the pins, then every changed tool's waiting calls
        (row,) = tool_pin_rows(agent=agent)
    assert row["waiting_count"] == 7
    assert [call.pk for call in row["waiting"]] == [call.pk for call in held[:5]]


def test_a_teammate_may_not_accept(client: Client, teammate: Any, agent: Any, pin: ToolPin) -> None:
    client.force_login(teammate)
    assert _accept(client, agent, pin).status_code == 403
    pin.refresh_from_db()
    assert pin.changed


def test_an_outsider_does_not_see_the_agent(
    client: Client, outsider: Any, agent: Any, pin: ToolPin
) -> None:
    client.force_login(outsider)
    assert _accept(client, agent, pin).status_code == 404
    pin.refresh_from_db()
    assert pin.changed


def test_it_refuses_a_definition_that_changed_again_since_the_page_was_shown(
    client: Client, owner: Any, agent: Any, pin: ToolPin
) -> None:
    shown = pin.changed_hash
    tool_pins_record(agent=agent, tools=[_seen("Something else again.")])
    client.force_login(owner)
    response = _accept(client, agent, pin, changed_hash=shown)
    assert response.status_code == 302
    pin.refresh_from_db()
    assert pin.changed and pin.definition["description"] == "Refund a charge."
    assert not AuditEvent.objects.filter(verb="tool.accepted").exists()


def test_with_htmx_the_pages_notice_of_changed_tools_is_sent_again(
    client: Client, owner: Any, agent: Any, pin: ToolPin
) -> None:
    client.force_login(owner)
    url = reverse("agents:tool-accept", args=[agent.slug, pin.pk])
    response = client.post(url, {"changed_hash": pin.changed_hash}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert '<div id="tools-changed-notice" hx-swap-oob="true"></div>' in body


def test_with_htmx_the_section_is_answered_in_place_saying_what_was_done(
    client: Client, owner: Any, agent: Any, pin: ToolPin
) -> None:
    """Where the owner is looking (the page's top, where other messages go, is far above)."""
    client.force_login(owner)
    url = reverse("agents:tool-accept", args=[agent.slug, pin.pk])
    stale = {"changed_hash": "0" * 64}
    refused = client.post(url, stale, HTTP_HX_REQUEST="true")
    assert refused.status_code == 409
    section = refused.content.decode()
    assert section.startswith('<section class="card" id="agent-tools">')
    assert 'class="error" role="status">The definition changed again' in section

    accepted = client.post(url, {"changed_hash": pin.changed_hash}, HTTP_HX_REQUEST="true")
    section = accepted.content.decode()
    assert accepted.status_code == 200
    assert 'class="ok" role="status">Accepted the new definition of payments/refund.' in section
    assert "calls held" not in section and "status-active" in section


def test_with_htmx_an_acceptance_has_the_pages_history_read_again(
    client: Client, owner: Any, agent: Any, pin: ToolPin
) -> None:
    """The History (a section of its own) shows tool.accepted without a reload: the answer
    tells the page its history changed, and the History listens for that; a refusal
    changed nothing and says nothing of the kind."""
    client.force_login(owner)
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert 'hx-trigger="agent-history-changed from:body"' in page
    url = reverse("agents:tool-accept", args=[agent.slug, pin.pk])
    refused = client.post(url, {"changed_hash": "0" * 64}, HTTP_HX_REQUEST="true")
    assert "HX-Trigger" not in refused
    accepted = client.post(url, {"changed_hash": pin.changed_hash}, HTTP_HX_REQUEST="true")
    assert json.loads(accepted["HX-Trigger"]).keys() == {"agent-history-changed"}
    history = client.get(
        reverse("agents:history", args=[agent.slug]),
        headers={"HX-Request": "true", "HX-Trigger": "agent-history"},
    )
    assert re.findall(r'<span class="verb">([^<]+)</span>', history.content.decode())[:2] == [
        "tool.accepted",
        "tool.changed",
    ]
    assert "HX-Push-Url" not in history  # re-read in place, not a step in the browser's history


def test_it_needs_the_csrf_token(owner: Any, agent: Any, pin: ToolPin) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert _accept(client, agent, pin).status_code == 403
    pin.refresh_from_db()
    assert pin.changed
