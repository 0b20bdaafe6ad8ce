"""Tokens for the refund bot, its refund policy, and the agent API as each token."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from oversight.agents.models import AgentToken
from oversight.agents.services import token_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import (
    AgentApi,
    RefundPolicy,
    refund_policy_create,
)


@pytest.fixture
def prod_token(agent: Any) -> tuple[AgentToken, str]:
    return token_create(actor=SYSTEM, agent=agent, environment="production", name="prod")


@pytest.fixture
def staging_token(agent: Any) -> tuple[AgentToken, str]:
    return token_create(actor=SYSTEM, agent=agent, environment="staging", name="staging")


@pytest.fixture
def other_token(other_agent: Any) -> tuple[AgentToken, str]:
    """The email campaigner is registered for staging only."""
    return token_create(actor=SYSTEM, agent=other_agent, environment="staging")


@pytest.fixture
def policy(agent: Any) -> RefundPolicy:
    return refund_policy_create(agent)


@pytest.fixture
def api(client: Client, prod_token: tuple[AgentToken, str]) -> AgentApi:
    return AgentApi(client, prod_token[1])


@pytest.fixture
def staging_api(client: Client, staging_token: tuple[AgentToken, str]) -> AgentApi:
    return AgentApi(client, staging_token[1])


@pytest.fixture
def other_api(client: Client, other_token: tuple[AgentToken, str]) -> AgentApi:
    return AgentApi(client, other_token[1])


@pytest.fixture
def anonymous_api(client: Client) -> AgentApi:
    return AgentApi(client, None)
