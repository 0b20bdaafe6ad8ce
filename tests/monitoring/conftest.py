"""A production token and a reviewer for the refund bot, and its refund policy."""

from __future__ import annotations

from typing import Any

import pytest

from oversight.agents.models import AgentToken
from oversight.agents.services import agent_access_grant, token_create
from tests.browser.conftest import browser, live_url, page  # noqa: F401  (browser tests)
from tests.conftest import SYSTEM
from tests.gateway.helpers import grant_refunds


@pytest.fixture
def prod_token(agent: Any) -> AgentToken:
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


@pytest.fixture
def refunds(agent: Any) -> Any:
    return grant_refunds(agent)


@pytest.fixture
def rita(agent: Any, reviewer: Any) -> Any:
    """The reviewer, with approve permission on the refund bot."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    return reviewer
