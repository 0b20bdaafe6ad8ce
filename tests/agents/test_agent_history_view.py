"""The agent page's History: changes by default, a filter, Older pages (htmx swaps of the
History alone), and the same access checks as the page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.models import Agent
from oversight.audit import verbs
from oversight.audit.models import AuditEvent
from oversight.audit.selectors import PAGE_SIZE
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from tests.audit.history_helpers import traffic
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
# A change cut a release and promoted it (newest first).
RELEASED = (verbs.RELEASE_PROMOTED, verbs.RELEASE_CREATED)


def _detail(agent: Agent) -> str:
    return reverse("agents:detail", args=[agent.slug])


def _history(agent: Agent) -> str:
    return reverse("agents:history", args=[agent.slug])


def _verbs(page: str) -> list[str]:
    return re.findall(r'<span class="verb">([^<]+)</span>', page)


def _older_link(page: str) -> str | None:
    found = re.search(r'hx-get="([^"]+)"[^>]*>Older events', page)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.fixture
def busy(agent: Agent) -> Agent:
    """A grant change among many decisions."""
    traffic(agent, 10)
    policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action="payments.refund", resource="stripe:*")
    )
    traffic(agent, PAGE_SIZE + 10)
    return agent


def test_the_page_shows_changes_not_decisions(client: Client, owner: Any, busy: Agent) -> None:
    client.force_login(owner)
    page = client.get(_detail(busy)).content.decode()
    assert _verbs(page) == [*RELEASED, verbs.GRANT_CREATED, *RELEASED, verbs.AGENT_CREATED]
    assert '<option value="changes" selected>All changes</option>' in page
    assert _older_link(page) is None


def test_the_page_shows_decisions_when_asked(client: Client, owner: Any, busy: Agent) -> None:
    client.force_login(owner)
    page = client.get(_detail(busy), {"show": "actions"}).content.decode()
    assert _verbs(page) == [verbs.ACTION_DECIDED] * PAGE_SIZE
    assert '<option value="actions" selected>' in page
    assert _older_link(page) is not None


def test_a_filter_swap_returns_the_history_alone_and_pushes_the_page_address(
    client: Client, teammate: Any, busy: Agent
) -> None:
    client.force_login(teammate)
    response = client.get(_history(busy), {"show": "policy"}, headers=HX)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page and 'id="agent-history"' in page
    assert _verbs(page) == [*RELEASED, verbs.GRANT_CREATED, *RELEASED]
    assert response["HX-Push-Url"] == f"{_detail(busy)}?show=policy"
    assert "HX-Request" in response["Vary"]


def test_older_links_walk_every_decision_once(client: Client, owner: Any, busy: Agent) -> None:
    client.force_login(owner)
    page = client.get(_history(busy), {"show": "actions"}, headers=HX).content.decode()
    seqs = re.findall(r'<span class="muted mono">#(\d+)</span>', page)
    link = _older_link(page)
    assert link is not None and "show=actions" in link
    older = client.get(link, headers=HX).content.decode()
    seqs += re.findall(r'<span class="muted mono">#(\d+)</span>', older)
    assert _older_link(older) is None
    assert "← Newest" in older
    expected = AuditEvent.objects.filter(agent_id=busy.pk, verb=verbs.ACTION_DECIDED)
    assert [int(s) for s in seqs] == list(expected.order_by("-seq").values_list("seq", flat=True))


def test_without_htmx_the_history_address_goes_to_the_page(
    client: Client, owner: Any, agent: Agent
) -> None:
    client.force_login(owner)
    response = client.get(_history(agent), {"show": "policy", "before": "9"})
    assert response.status_code == 302
    assert response["Location"] == f"{_detail(agent)}?show=policy&before=9"


def test_an_unknown_choice_shows_the_changes(client: Client, owner: Any, busy: Agent) -> None:
    client.force_login(owner)
    page = client.get(_history(busy), {"show": "bogus", "before": "x"}, headers=HX)
    assert _verbs(page.content.decode()) == [
        *RELEASED,
        verbs.GRANT_CREATED,
        *RELEASED,
        verbs.AGENT_CREATED,
    ]


def test_an_empty_choice_says_so(client: Client, owner: Any, busy: Agent) -> None:
    client.force_login(owner)
    page = client.get(_history(busy), {"show": "killswitch"}, headers=HX).content.decode()
    assert _verbs(page) == []
    assert "Nothing of this kind yet." in page
    assert "Show everything" in page


@pytest.mark.parametrize("who", ["outsider", "reviewer"])
def test_people_without_access_get_a_404(
    client: Client, request: pytest.FixtureRequest, busy: Agent, who: str
) -> None:
    client.force_login(request.getfixturevalue(who))
    for headers in (HX, {}):
        response = client.get(_history(busy), {"show": "all"}, headers=headers)
        assert response.status_code == 404
        assert "payments.refund" not in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client: Client, agent: Agent) -> None:
    response = client.get(_history(agent), headers=HX)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
