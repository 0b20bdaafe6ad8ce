"""Provenance: everything that decided an action, on its page and in one API call."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.accounts.models import Team
from oversight.accounts.services import personal_token_create
from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, api_error, hold_large_refunds, limit_create, refund

pytestmark = pytest.mark.django_db

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def agent_api(agent: Agent) -> AgentApi:
    from tests.gateway.helpers import grant_refunds

    grant_refunds(agent)
    return AgentApi(Client(), token_create(actor=SYSTEM, agent=agent, environment="production")[1])


def test_one_call_shows_what_decided_an_action(
    agent: Agent, agent_api: AgentApi, reviewer: Any
) -> None:
    Team.objects.filter(pk=agent.team_id).update(
        trace_url="https://tracing.example.com/trace/{trace_id}"
    )
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    hold_large_refunds(agent)
    limit_create(agent=agent, max_count=10, window_seconds=3600)
    agent.refresh_from_db()
    decided = agent_api.decide(refund(900, traceparent=TRACEPARENT, session_id="conv-7"))
    approval_vote(user=reviewer, action_id=decided["id"], vote="approve", comment="ok by me")

    person = AgentApi(Client(), personal_token_create(user=reviewer, name="cli")[1])
    response = person.get(f"/provenance/{decided['id']}")
    assert response.status_code == 200
    found = response.json()
    assert found["release"]["version"] == agent.stable_version
    assert found["policy_version"] == agent.policy_version
    assert [r["name"] for r in found["reasons"]] == ["large refunds"]  # what held it
    assert found["limits"][0]["limit"] == "refunds per hour"
    assert found["limits"][0]["count_now"] == 1 and found["limits"][0]["max_count"] == 10
    assert [(v["voter"], v["vote"], v["comment"]) for v in found["voters"]] == [
        ("rita", "approve", "ok by me")
    ]
    assert found["session_id"] == "conv-7"
    assert found["trace"] == {
        "traceparent": TRACEPARENT,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "url": "https://tracing.example.com/trace/4bf92f3577b34da6a3ce929d0e0e4736",
    }
    page = Client()
    page.force_login(reviewer)
    html = page.get(reverse("approvals:action", args=[decided["id"]])).content.decode()
    assert "https://tracing.example.com/trace/4bf92f3577b34da6a3ce929d0e0e4736" in html
    assert "refunds per hour" in html


def test_someone_who_may_not_see_the_agent_gets_404(agent_api: AgentApi, outsider: Any) -> None:
    decided = agent_api.decide(refund(10))
    person = AgentApi(Client(), personal_token_create(user=outsider, name="cli")[1])
    assert person.get(f"/provenance/{decided['id']}").status_code == 404
    assert agent_api.get(f"/provenance/{decided['id']}").status_code == 401  # agents: no


@pytest.mark.parametrize(
    "bad",
    [
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "not a trace",
    ],
)
def test_a_bad_traceparent_is_refused_and_nothing_is_recorded(
    agent_api: AgentApi, bad: str
) -> None:
    from oversight.gateway.models import Action

    error = api_error(
        agent_api.post("/actions", refund(10, traceparent=bad)), 422, "validation_error"
    )
    assert "traceparent" in error["fields"]
    assert not Action.objects.exists()


def test_each_limit_shows_its_window_as_it_was_when_the_action_was_decided(
    agent: Agent, agent_api: AgentApi, reviewer: Any
) -> None:
    """Three refunds charge a sum limit; the second is held and then rejected, which gives
    its charge back. The first shows 1 and 10; the third, 2 (the second's charge was
    given back before it) and 40; all three show 2 and 40 now."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    hold_large_refunds(agent)
    limit_create(
        agent=agent, name="refund sum", max_sum=5000, sum_param="amount", window_seconds=3600
    )
    first = agent_api.decide(refund(10))
    second = agent_api.decide(refund(900))
    approval_vote(user=reviewer, action_id=second["id"], vote="deny", comment="too much")
    third = agent_api.decide(refund(30))
    person = AgentApi(Client(), personal_token_create(user=reviewer, name="cli")[1])

    def window(decided: dict[str, Any]) -> tuple[Any, ...]:
        (limit,) = person.get(f"/provenance/{decided['id']}").json()["limits"]
        return (
            limit["count_at_decision"],
            Decimal(limit["total_at_decision"]),
            limit["count_now"],
            Decimal(limit["total_now"]),
        )

    assert window(first) == (1, 10, 2, 40)
    assert window(second) == (2, 910, 2, 40)
    assert window(third) == (2, 40, 2, 40)


def test_the_action_page_shows_the_limits_sums_as_people_write_them(
    agent: Agent, agent_api: AgentApi, reviewer: Any
) -> None:
    """The window's sum kept by its counter (numeric(.., 4): "40.0000") and the one added
    up from the actions ("40") read alike, and a round maximum never as "2E+4"."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    limit_create(
        agent=agent, name="refund sum", max_sum=20000, sum_param="amount", window_seconds=3600
    )
    agent_api.decide(refund(10))
    second = agent_api.decide(refund(30))
    browser = Client()
    browser.force_login(reviewer)
    page = browser.get(reverse("approvals:action", args=[second["id"]])).content.decode()
    row = page[page.index('<td data-label="Limit charged">refund sum</td>') :].split("</tr>")[0]
    # This action's charge, named by the param it sums ("1 action, 30" did not say of what).
    assert '<td data-label="This action">1 action, amount 30</td>' in row
    assert row.count("2 actions, amount 40<") == 2  # the window when decided, and now
    assert '<td data-label="Of at most">amount 20000</td>' in row
    assert " 20000</td>" in row
    assert "0000" not in row.replace("20000", "")
    assert "E+" not in row


def test_an_action_counted_by_a_count_limit_is_shown_as_one_action(
    agent: Agent, agent_api: AgentApi, reviewer: Any
) -> None:
    """A limit that counts actions charges each one action (its charged amount is 0): the
    page says "1 action", as its window's columns count, not "0"."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    limit_create(agent=agent, name="refunds per hour", max_count=500, window_seconds=3600)
    decided = agent_api.decide(refund(10))
    browser = Client()
    browser.force_login(reviewer)
    page = browser.get(reverse("approvals:action", args=[decided["id"]])).content.decode()
    row = page[page.index('<td data-label="Limit charged">refunds per hour</td>') :]
    row = row.split("</tr>")[0]
    assert '<td data-label="This action">1 action</td>' in row
    assert row.count(">1 action<") == 3  # this action, and its window when decided and now
    assert ">500 actions<" in row
