"""What a fast-lane decision sets off once recorded (its live rows; for a held action,
escalating and telling its reviewers) runs outside the decision's deadline, and after
the answer is sent: a deadline that passes just after the decision was written still
leaves the reviewers told, and the agent does not wait for them to be told."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from django.core.asgi import get_asgi_application
from django.db import connection, connections

from oversight.agents.models import AgentToken
from oversight.gateway import auth, fastlane, record_sql
from oversight.gateway.models import Action
from oversight.gateway.pipeline import ActionInput
from oversight.lib.deadline import Deadline
from oversight.notifications.models import Notification
from tests.gateway.helpers import lane_call, lane_closed, refund
from tests.notifications.conftest import set_channels

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def raw(prod_token: tuple[AgentToken, str], policy: Any, agent: Any) -> str:
    """The production token (not yet kept by the server); the team's people are told
    by email; refunds over 500 are held (``policy``)."""
    auth._kept.clear()
    set_channels(agent.team, email=True)
    return prod_token[1]


def test_a_held_decision_tells_its_reviewers_though_its_deadline_passed_after_it(
    raw: str,
) -> None:
    deadline = Deadline(30)

    def passes_after_the_decision(execute: Any, sql: str, *args: Any) -> Any:
        result = execute(sql, *args)
        if sql == record_sql.CALL_SQL:  # written and durable: the time is up now
            deadline.at = time.monotonic() - 1
        return result

    with connection.execute_wrapper(passes_after_the_decision):
        (status, answer), effects = fastlane._work_by(
            deadline, "test-request", fastlane._decide, raw, ActionInput(**refund(900)), ""
        )
    assert (status, answer["status"]) == (201, "pending")
    assert deadline.passed()
    fastlane._effects_by(effects)
    held = Action.objects.get(pk=answer["id"])
    told = Notification.objects.filter(action=held, channel="email")
    assert told.exists(), "the reviewers of a held action were not told"


def _told() -> int:
    """From a thread of its own, as the lane's are: the email notifications so far."""
    try:
        return Notification.objects.filter(channel="email").count()
    finally:
        connections.close_all()


def test_the_answer_is_sent_before_the_reviewers_are_told_and_they_are_told(raw: str) -> None:
    told_at_answer: list[int] = []

    async def when_sent(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            told_at_answer.append(await asyncio.to_thread(_told))

    lane = fastlane.DecisionFastLane(get_asgi_application())
    try:
        status, answer = lane_call(lane, raw, json.dumps(refund(900)).encode(), on_send=when_sent)
    finally:
        lane_closed(lane)  # its threads are done: what the decision set off too

    assert (status, answer["status"]) == (201, "pending")
    assert told_at_answer == [0], "the answer waited for the reviewers to be told"
    held = Action.objects.get(pk=answer["id"])
    assert Notification.objects.filter(action=held, channel="email").exists()
