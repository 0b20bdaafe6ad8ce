"""What a limit's reason says: the bound that was passed, as far as the decision knows it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oversight.agents.services import token_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, limit_create, refund

pytestmark = pytest.mark.django_db


def _limit_detail(agent: Any, amount: int) -> str:
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    action = decide(token, refund(amount))
    [reason] = [r for r in action.reasons if r["kind"] == "limit"]
    return reason["detail"]


def test_one_action_over_the_sum_alone_says_so_and_names_only_the_sum(agent: Any) -> None:
    grant_refunds(agent)
    limit_create(agent=agent, max_count=40, max_sum=Decimal(20000), sum_param="amount")
    assert _limit_detail(agent, 25000) == (
        "this action's amount of 25000 alone is over 20000 of amount per 3600s (agent)"
    )


def test_a_limit_with_both_bounds_does_not_say_both_were_passed(agent: Any) -> None:
    """The counter reports that the limit is over, not which bound: 'or', never 'and'."""
    grant_refunds(agent)
    limit_create(agent=agent, max_count=1, max_sum=Decimal(20000), sum_param="amount")
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    assert decide(token, refund(450)).status == "allowed"
    assert _limit_detail(agent, 450) == "over 1 actions or 20000 of amount per 3600s (agent)"
