from __future__ import annotations

from typing import Any

import pytest

from oversight.accounts.services import team_add_member
from tests.conftest import SYSTEM, make_user


@pytest.fixture(autouse=True)
def _eager_tasks(eager_tasks: None) -> None:
    """Sends run inline also on the Redis run (tests/conftest.py)."""


@pytest.fixture
def team_admin(django_user_model: Any, team: Any) -> Any:
    """An admin who is a member of the payments team."""
    user = make_user(django_user_model, "tess", "admin")
    team_add_member(actor=SYSTEM, team=team, user=user)
    return user
