"""A held action of the refund bot, the people who may decide it, and channels."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from guardian.shortcuts import assign_perm

from oversight.accounts import roles
from oversight.agents.constants import APPROVE
from oversight.agents.services import agent_access_grant
from oversight.celery import app as celery_app
from oversight.gateway.models import Action
from oversight.notifications.constants import DIGEST_WINDOW_SECONDS
from oversight.notifications.models import Notification, TeamChannels
from oversight.notifications.services import notify_action_held, team_channels_update
from tests.conftest import SYSTEM, make_user
from tests.notifications.receiver import Receiver, webhook_receiver

ONE_TEST_SECONDS = 120  # the longest digest test (1,000 held actions) takes 20 to 30 s


@pytest.fixture
def one_digest_window() -> None:
    """A test that counts digested items runs inside one digest window: started too near
    the end of one (windows are clock hours), its actions would be told in two, each with
    its own first few one by one. So it waits for the next window when the current one
    has less than ONE_TEST_SECONDS left."""
    left = DIGEST_WINDOW_SECONDS - time.time() % DIGEST_WINDOW_SECONDS
    if left < ONE_TEST_SECONDS:
        time.sleep(left + 0.5)


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    """Tasks run inline, as in the zero-install default, also on the PostgreSQL and Redis
    run: these tests must not leave messages in a queue no worker reads.
    (test_live.py overrides this to use a real worker.)"""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


@pytest.fixture
def inline_retries() -> None:
    """Eager tasks with propagation off: ``self.retry()`` then runs the retry inline at
    once (the countdown is ignored). With propagation on, the project's setting, the
    first ``Retry`` is raised to the caller instead."""
    celery_app.conf.task_eager_propagates = False


@pytest.fixture
def rita(agent: Any, reviewer: Any) -> Any:
    """A reviewer granted approve on the refund bot directly."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    return reviewer


@pytest.fixture
def gus(django_user_model: Any, agent: Any) -> Any:
    """A member of a group granted approve on the refund bot."""
    user = make_user(django_user_model, "gus")
    group = Group.objects.create(name="refund approvers")
    group.user_set.add(user)
    assign_perm(APPROVE, group, agent)
    return user


@pytest.fixture
def viewer(django_user_model: Any, agent: Any) -> Any:
    """May see the refund bot but not decide for it."""
    user = make_user(django_user_model, "vera", roles.AUDITOR)
    agent_access_grant(actor=SYSTEM, agent=agent, user=user, level="viewer")
    return user


def hold(agent: Any, **fields: Any) -> Action:
    now = timezone.now()
    values: dict[str, Any] = {
        "agent": agent,
        "environment": "production",
        "action": "payments.refund",
        "resource": "stripe:charge/ch_1",
        "params": {"amount": 900, "card": "4242"},
        "reason": "Customer was charged twice",
        "status": "pending",
        "decision": "pending",
        "reasons": [
            {
                "kind": "rule",
                "id": 1,
                "name": "large refunds",
                "effect": "hold",
                "detail": "params.amount > 500",
            }
        ],
        "approvals_required": 1,
        "expires_at": now + dt.timedelta(hours=1),
        "request_hash": "0" * 64,
    }
    values.update(fields)
    return Action.objects.create(**values)


@pytest.fixture
def held_action(agent: Any) -> Action:
    return hold(agent)


def set_channels(team: Any, *, email: bool = False, webhook_url: str = "") -> TeamChannels:
    return team_channels_update(
        actor=SYSTEM, team=team, email_enabled=email, webhook_url=webhook_url
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


def queued(action: Any, capture: Any) -> list[Notification]:
    """Notifications created but not sent: their on-commit sends are dropped."""
    with capture(execute=False):
        return notify_action_held(action_id=action.pk)


@pytest.fixture
def webhook(
    team: Any, held_action: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> Notification:
    set_channels(team, webhook_url=receiver.url)
    (notification,) = queued(held_action, django_capture_on_commit_callbacks)
    return notification
