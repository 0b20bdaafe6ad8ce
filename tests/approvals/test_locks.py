"""Changing an agent, or voting on one of its actions, never stops its decisions.

Each change locks its row for the rest of its transaction and then appends an audit
event. A decision of the agent appends its event first and, when it commits, PostgreSQL
checks its foreign key to the agent with a key-share lock on the agent row. With a plain
FOR UPDATE that check waited for the change, which waited for the audit lock the
decision held: a deadlock. FOR NO KEY UPDATE does not conflict with the check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from oversight.agents.locking import agent_lock
from oversight.agents.models import AgentToken
from oversight.approvals.services import action_lock
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from tests.gateway.helpers import decide, refund, refund_policy_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _decide_elsewhere(token: AgentToken, amount: int) -> Callable[[], list[Any]]:
    """Start a decision on another connection; the returned call waits up to 10 s."""
    done: list[Any] = []

    def run() -> None:
        try:
            done.append(decide(token, refund(amount)).status)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait() -> list[Any]:
        thread.join(timeout=10)
        return done

    return wait


@pytest.mark.parametrize("lock", ["the agent", "a held action"])
def test_a_decision_commits_while_a_change_holds_its_lock(
    lock: str, agent: Any, prod_token: AgentToken
) -> None:
    refund_policy_create(agent)
    held = decide(prod_token, refund(900))
    with transaction.atomic():
        agent_lock(agent.pk) if lock == "the agent" else action_lock(held.pk)
        waiting = _decide_elsewhere(prod_token, 100)
        assert waiting() == ["allowed"]  # committed while the lock is held
        audit_record(actor=Actor.system("tests"), verb="test.change", target=agent)
