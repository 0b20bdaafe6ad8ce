"""Policy tests: the agent's team has a reviewer (rita), so its hold rules can be saved
(a hold rule that nobody could approve is refused; see tests/approvals/test_eligibility.py)."""

from __future__ import annotations

from typing import Any

import pytest

from oversight.accounts.services import team_reviewer_add
from tests.conftest import SYSTEM


@pytest.fixture
def agent(agent: Any, reviewer: Any) -> Any:
    team_reviewer_add(actor=SYSTEM, team=agent.team, user=reviewer)
    agent.team.refresh_from_db()
    return agent
