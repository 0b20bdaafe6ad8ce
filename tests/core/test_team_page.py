"""A team's page lists its agents, with how many there are."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from oversight.agents.services import agent_create
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def _page(user: Any, team: Any) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/teams/{team.slug}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_team_page_counts_its_agents(agent: Any, team: Any, owner: Any) -> None:
    """It read a bare "agent": the count came from the registry's page, not passed here."""
    assert '<p class="muted count">1 agent</p>' in _page(owner, team)
    agent_create(
        actor=SYSTEM, name="Dunning bot", purpose="Chases invoices.", owner=owner, team=team
    )
    body = _page(owner, team)
    assert '<p class="muted count">2 agents</p>' in body
    assert body.index("Dunning bot") < body.index("Refund bot")  # by name
    assert "Showing" not in body  # all on one page: no page navigation
