"""Changing an agent, or voting on one of its actions, never stops its decisions.

Each change locks its row for the rest of its transaction and then appends an audit
event. A decision of the agent appends its event first and, when it commits, PostgreSQL
checks its foreign key to the agent with a key-share lock on the agent row. With a plain
FOR UPDATE that check waited for the change, which waited for the audit lock the
decision held: a deadlock. FOR NO KEY UPDATE does not conflict with the check.

A vote's lock also orders it with a cancellation of the same action: the cancellation
gives back the quota the action holds once the vote committed, not what it read before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from oversight.agents.locking import agent_lock
from oversight.agents.models import AgentToken
from oversight.approvals.services import action_lock, approval_vote
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.audit.services import audit_record
from oversight.gateway.lifecycle import action_cancel
from oversight.gateway.models import Action
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.models import LimitCounter
from tests.gateway.helpers import decide, limit_create, refund, refund_policy_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _elsewhere(call: Callable[[], Any]) -> Callable[[], list[Any]]:
    """Start ``call`` on another connection; the returned call waits up to 10 s for its
    answer."""
    done: list[Any] = []

    def run() -> None:
        try:
            done.append(call())
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
        waiting = _elsewhere(lambda: decide(prod_token, refund(100)).status)
        assert waiting() == ["allowed"]  # committed while the lock is held
        audit_record(actor=Actor.system("tests"), verb="test.change", target=agent)


def _until_a_lock_is_waited_for() -> None:
    with connection.cursor() as cursor:
        for _ in range(200):
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("nothing waited for a lock")


def test_a_cancel_waiting_for_an_edit_gives_back_the_edited_charge(
    agent: Any, prod_token: AgentToken, rita: Any
) -> None:
    limit = limit_create(max_sum=Decimal(1000), sum_param="amount")
    refund_policy_create(agent)
    held = decide(prod_token, refund(900))
    with transaction.atomic():  # the reviewer's approval of 600, committed at the block's end
        edit = {"amount": 600, "charges": ["ch_1"]}
        approval_vote(user=rita, action_id=held.pk, vote="approve", params=edit)
        # The agent's cancel reads the action as committed (held, 900), then waits for its
        # row.
        cancelling = _elsewhere(lambda: action_cancel(token=prod_token, action_id=held.pk).status)
        _until_a_lock_is_waited_for()
    assert cancelling() == ["cancelled"]
    counter = LimitCounter.objects.get(limit=limit)
    assert (counter.count, counter.total) == (0, Decimal(0))  # not 900 given back for 600
    cancelled = AuditEvent.objects.get(verb="action.cancelled")
    assert cancelled.before == {"status": "approved"}  # as claimed, not as read


def test_a_kill_switch_pressed_while_a_vote_holds_an_action_waits_for_it_then_cancels_it(
    agent: Any, prod_token: AgentToken, admin_user: Any
) -> None:
    """A vote locks its action, then appends to the audit chain; the press locks the
    actions it will cancel before it appends its own event, so it waits for the vote
    instead of both waiting on each other."""
    refund_policy_create(agent)
    held = decide(prod_token, refund(900))
    with transaction.atomic():  # a vote: the action's row, then (last) the audit chain
        action_lock(held.pk)
        pressing = _elsewhere(
            lambda: (
                killswitch_engage(
                    actor=Actor.for_user(admin_user),
                    target=Target(scope="agent", agent=agent),
                    reason="refunds look wrong",
                ).engaged
            )
        )
        _until_a_lock_is_waited_for()
        audit_record(actor=Actor.system("tests"), verb="test.vote", target=agent)
    assert pressing() == [True]
    assert Action.objects.get(pk=held.pk).status == "cancelled"


def test_a_rewind_started_while_a_vote_holds_an_action_of_its_window_waits_then_cancels_it(
    agent: Any, prod_token: AgentToken, owner: Any
) -> None:
    """As the kill switch: the rewind locks the held actions it will cancel before it
    appends its own event, so it waits for the vote instead of both waiting on each other
    (one of the two was refused as a deadlock)."""
    import datetime as dt

    from django.utils import timezone

    from oversight.rewind import bulk
    from oversight.rewind.plan import Scope

    refund_policy_create(agent)
    held = decide(prod_token, refund(900))
    now = timezone.now()
    scope = Scope(agent=agent, since=now - dt.timedelta(hours=1), until=now)
    with transaction.atomic():  # a vote: the action's row, then (last) the audit chain
        action_lock(held.pk)
        starting = _elsewhere(
            lambda: bulk.rewind_create(actor=Actor.for_user(owner), scope=scope).state
        )
        _until_a_lock_is_waited_for()
        audit_record(actor=Actor.system("tests"), verb="test.vote", target=agent)
    assert starting() == ["running"]
    assert Action.objects.get(pk=held.pk).status == "cancelled"
