"""Who is told of a held action: those who may approve it, and admins only as a fallback."""

from __future__ import annotations

from typing import Any

import pytest

from oversight.agents.services import agent_access_grant
from oversight.notifications.selectors import action_reviewers
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def _told(agent: Any) -> set[str]:
    return {user.username for user in action_reviewers(agent=agent)}


def test_it_selects_reviewers_granted_directly_or_through_a_group(
    agent: Any, rita: Any, gus: Any
) -> None:
    assert _told(agent) == {"rita", "gus"}


def test_viewers_teammates_owners_and_outsiders_are_not_told(
    agent: Any, rita: Any, viewer: Any, teammate: Any, owner: Any, outsider: Any
) -> None:
    assert _told(agent) == {"rita"}


def test_a_grant_on_another_agent_does_not_count(
    agent: Any, other_agent: Any, rita: Any, outsider: Any, django_user_model: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=other_agent, user=outsider, level="reviewer")
    assert _told(agent) == {"rita"}
    assert _told(other_agent) == {"mallory"}


def test_admins_are_told_only_when_nobody_else_may_decide(
    agent: Any, admin_user: Any, reviewer: Any
) -> None:
    assert _told(agent) == {"ada"}
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    assert _told(agent) == {"rita"}


def test_an_admin_holding_the_grant_is_told_with_the_others(
    agent: Any, admin_user: Any, rita: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=admin_user, level="reviewer")
    assert _told(agent) == {"ada", "rita"}


def test_superusers_count_as_admins(agent: Any, django_user_model: Any) -> None:
    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    assert _told(agent) == {"root"}


def test_deactivated_reviewers_are_not_told(agent: Any, rita: Any, gus: Any) -> None:
    gus.is_active = False
    gus.save()
    assert _told(agent) == {"rita"}


def test_a_member_of_two_approving_groups_is_listed_once(agent: Any, rita: Any, gus: Any) -> None:
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    second = Group.objects.create(name="night shift")
    second.user_set.add(gus)
    assign_perm("approve_agent", second, agent)
    assert [u.username for u in action_reviewers(agent=agent)].count("gus") == 1


def test_it_reads_them_in_two_queries(
    agent: Any, rita: Any, gus: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(2):  # "anyone holding it?" and the list itself
        list(action_reviewers(agent=agent))
