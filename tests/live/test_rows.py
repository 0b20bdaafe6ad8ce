"""One row of the live feed, as the pages and the broadcasts send it."""

from __future__ import annotations

from typing import Any

import pytest
from django.template.loader import render_to_string
from django.urls import reverse, set_script_prefix
from django.utils import timezone
from django.utils.text import Truncator

from oversight.gateway.models import Action
from oversight.live import rows


def _action(agent: Any, **fields: Any) -> Action:
    defaults: dict[str, Any] = {
        "agent": agent,
        "environment": "production",
        "action": "crm.note<script>",
        "resource": "crm:contact/" + "x" * 80,
        "status": "pending",
        "decision": "pending",
        "reasons": [{"name": 'big "refunds" & more', "kind": "rule"}],
        "request_hash": "0" * 64,
    }
    return Action.objects.create(**{**defaults, **fields})


@pytest.mark.django_db
def test_a_row_escapes_what_agents_send_and_shortens_the_resource(agent: Any) -> None:
    agent.name = "Refund <b>bot</b>"
    html = rows.feed_cells(_action(agent))
    assert "crm.note&lt;script&gt;" in html and "<script>" not in html
    assert "Refund &lt;b&gt;bot&lt;/b&gt;" in html
    assert "big &quot;refunds&quot; &amp; more" in html
    assert ("x" * 35 + "…") in html and "x" * 40 not in html
    assert '<span class="pill status-pending">Waiting for approval</span>' in html
    assert "hx-swap-oob" not in html


@pytest.mark.django_db
def test_a_new_action_goes_to_the_top_of_both_feeds_and_an_update_replaces_its_row(
    agent: Any,
) -> None:
    action = _action(agent, reasons=[])
    new = rows.feed_fragment(action, created=True)
    # One copy, for both feeds; pending: the lowest rank of the lifecycle.
    assert new.count(f'<tr id="action-{action.pk}" data-rank="0">') == 1
    assert new.startswith(
        f'<tbody hx-swap-oob="afterbegin:#action-feed,#agent-{agent.pk}-feed"><tr id='
    )
    update = rows.feed_fragment(action, created=False)
    assert update.startswith(
        f'<tr id="action-{action.pk}" hx-swap-oob="true" data-oob-if-present data-rank="0">'
    )
    assert '<td class="muted"></td>' in update


@pytest.mark.django_db
def test_a_row_carries_how_far_along_its_lifecycle_its_action_is(agent: Any) -> None:
    """A status only moves to a higher rank; a page drops an update of a lower one."""
    ranks = {
        status: rows.feed_cells(_action(agent, status=status)).split('data-rank="')[1][0]
        for status in ("pending", "allowed", "approved", "failed", "expired", "rolled_back")
    }
    assert ranks == {
        "pending": "0",
        "allowed": "1",
        "approved": "1",
        "failed": "2",
        "expired": "2",
        "rolled_back": "3",
    }


@pytest.mark.django_db
def test_an_approved_action_the_agent_started_says_so_and_outranks_its_approval(
    agent: Any,
) -> None:
    """The start comes after the vote: the vote's update, crossing it, must not undo it."""
    action = _action(agent, status="approved", started_at=timezone.now())
    html = rows.feed_cells(action)
    assert '<span class="pill status-approved">Approved, started</span>' in html
    assert 'data-rank="1.5"' in html
    action.status = "succeeded"
    assert 'data-rank="2"' in rows.feed_cells(action)


@pytest.mark.django_db
def test_the_page_renders_the_same_row(agent: Any) -> None:
    action = _action(agent)
    table = render_to_string("live/_feed_table.html", {"actions": [action], "feed_id": "f"})
    assert rows.feed_cells(action) in table


@pytest.mark.django_db
def test_the_links_are_the_agents_and_the_actions_pages_under_the_script_prefix(
    agent: Any,
) -> None:
    action = _action(agent)
    try:
        for prefix in ("/", "/oversight/"):
            set_script_prefix(prefix)
            html = rows.feed_cells(action)
            assert f'href="{reverse("agents:detail", args=[agent.slug])}"' in html
            assert f'href="{reverse("approvals:action", args=[action.pk])}"' in html
            assert f'href="{prefix}' in html
    finally:
        set_script_prefix("/")


@pytest.mark.parametrize(
    "resource",
    ["", "x" * 48, "x" * 49, "é" * 48, "é" * 49, "e\u0301" * 30, "stripe:charge/ch_1<&>\"'"],
)
def test_a_resource_is_shortened_as_django_s_truncator_does(resource: str) -> None:
    assert rows._short(resource) == Truncator(resource).chars(48)


@pytest.mark.django_db
def test_the_why_is_the_reason_that_decided_not_the_grant_before_it(agent: Any) -> None:
    grant = {"kind": "grant", "name": "mcp.payments.refund on stripe:charge/*", "effect": "allow"}
    pin = {"kind": "tool_pin", "name": "changed tool definition", "effect": "hold"}
    held = rows.feed_cells(_action(agent, reasons=[grant, pin]))
    assert "changed tool definition" in held and "stripe:charge/*" not in held
    allowed = rows.feed_cells(_action(agent, status="allowed", reasons=[grant]))
    assert "mcp.payments.refund on stripe:charge/*" in allowed
    assert "<td" in rows.feed_cells(_action(agent, reasons=[]))  # no reason: an empty why


@pytest.mark.django_db
def test_a_cancelled_action_says_what_cancelled_it_not_the_rule_that_held_it(agent: Any) -> None:
    hold = {"kind": "rule", "name": "big refunds need a human", "effect": "hold"}
    why = "kill switch for agent Refund bot: refunds going to the wrong customers " + "x" * 80
    html = rows.feed_cells(_action(agent, status="cancelled", reasons=[hold], error=why))
    assert Truncator(why).chars(80) in html
    assert "big refunds need a human" not in html
