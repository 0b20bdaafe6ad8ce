"""A production token for the refund bot, and reviewers who may decide its held actions."""

from __future__ import annotations

from typing import Any

import pytest

from oversight.accounts import roles
from oversight.agents.models import AgentToken
from oversight.agents.services import agent_access_grant, token_create
from tests.conftest import SYSTEM, make_user


@pytest.fixture
def prod_token(agent: Any) -> AgentToken:
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


@pytest.fixture
def rita(agent: Any, reviewer: Any) -> Any:
    """The `reviewer` fixture, with approve permission on the refund bot."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    return reviewer


@pytest.fixture
def rob(django_user_model: Any, agent: Any) -> Any:
    """A second reviewer with approve permission on the refund bot."""
    user = make_user(django_user_model, "rob", roles.REVIEWER)
    agent_access_grant(actor=SYSTEM, agent=agent, user=user, level="reviewer")
    return user
