"""An agent with a token and a policy, served by the real ASGI server on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from oversight.agents.services import token_create
from oversight.policy.models import Grant, Limit, Rule
from oversight.policy.services import policy_object_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import standby_reviewer
from tests.servers import asgi_server


@dataclass(frozen=True)
class LiveAgent:
    url: str
    token: str
    agent: Any

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def server_env() -> dict[str, str]:
    """The server's environment beyond the test settings; a module may override it."""
    return {}


@pytest.fixture
def live_agent(
    transactional_db: None, agent: Any, server_env: dict[str, str]
) -> Iterator[LiveAgent]:
    policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action="payments.refund", resource="stripe:charge/*")
    )
    standby_reviewer(agent)  # a hold rule needs someone who can approve it
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=agent,
            name="big refunds need a human",
            effect="hold",
            action="payments.refund",
            condition="params.amount > 500",
        ),
    )
    policy_object_create(
        actor=SYSTEM,
        obj=Limit(
            agent=agent,
            name="refund volume",
            action="payments.refund",
            window_seconds=3600,
            max_count=100,
            on_exceed="deny",
        ),
    )
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    with asgi_server(server_env) as url:
        yield LiveAgent(url=url, token=raw, agent=agent)
