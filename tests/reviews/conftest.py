from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from oversight.accounts.services import team_add_member
from oversight.celery import app as celery_app
from tests.conftest import SYSTEM, make_user


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    """Sends run inline also on the Redis run: no messages left in a queue nobody reads."""
    conf = celery_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = saved


@pytest.fixture
def team_admin(django_user_model: Any, team: Any) -> Any:
    """An admin who is a member of the payments team."""
    user = make_user(django_user_model, "tess", "admin")
    team_add_member(actor=SYSTEM, team=team, user=user)
    return user
