"""What a fast-lane decision sets off once recorded (its live rows; for a held action,
escalating and telling its reviewers) runs outside the decision's deadline: a deadline
that passes just after the decision was written still leaves the reviewers told."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection

from oversight.agents.models import AgentToken
from oversight.gateway import auth, fastlane, record_sql
from oversight.gateway.models import Action
from oversight.gateway.pipeline import ActionInput
from oversight.lib.deadline import Deadline
from oversight.notifications.models import Notification
from tests.gateway.helpers import refund
from tests.notifications.conftest import set_channels

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_held_decision_tells_its_reviewers_though_its_deadline_passed_after_it(
    prod_token: tuple[AgentToken, str], policy: Any, agent: Any
) -> None:
    auth._kept.clear()
    set_channels(agent.team, email=True)
    _token, raw = prod_token
    deadline = Deadline(30)

    def passes_after_the_decision(execute: Any, sql: str, *args: Any) -> Any:
        result = execute(sql, *args)
        if sql == record_sql.CALL_SQL:  # written and durable: the time is up now
            deadline.at = time.monotonic() - 1
        return result

    with connection.execute_wrapper(passes_after_the_decision):
        status, answer = fastlane._work_by(
            deadline, "test-request", fastlane._decide, raw, ActionInput(**refund(900)), ""
        )
    assert (status, answer["status"]) == (201, "pending")
    assert deadline.passed()
    held = Action.objects.get(pk=answer["id"])
    told = Notification.objects.filter(action=held, channel="email")
    assert told.exists(), "the reviewers of a held action were not told"
