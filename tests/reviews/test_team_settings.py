"""The periods the jobs use are each team's, changed through one audited service (and the
admin, which calls it)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from oversight.accounts.models import Team
from oversight.accounts.services import team_review_settings_update
from oversight.audit.models import AuditEvent
from oversight.reviews.models import Review
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def test_the_defaults(team: Team) -> None:
    assert (
        team.review_reminder_days,
        team.review_grace_days,
        team.review_pause_after_days,
        team.owner_grace_days,
        team.inactivity_retire_days,
        team.retirement_notice_days,
    ) == (7, 7, 30, 7, 90, 14)


def test_a_change_is_audited(team: Team) -> None:
    team_review_settings_update(actor=SYSTEM, team=team, review_grace_days=3)
    event = AuditEvent.objects.filter(verb="team.updated").latest("seq")
    assert (event.before["review_grace_days"], event.after["review_grace_days"]) == (7, 3)


@pytest.mark.parametrize(
    "values",
    [
        {"review_pause_after_days": 3, "review_grace_days": 5},
        {"retirement_notice_days": 90},
        {"inactivity_retire_days": 0},
        {"review_grace_days": -1},
    ],
)
def test_inconsistent_periods_are_refused(team: Team, values: dict[str, Any]) -> None:
    count = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        team_review_settings_update(actor=SYSTEM, team=team, **values)
    assert Team.objects.get(pk=team.pk).review_grace_days == 7
    assert AuditEvent.objects.count() == count


def test_unknown_settings_are_refused(team: Team) -> None:
    with pytest.raises(ValueError, match="Not a review setting"):
        team_review_settings_update(actor=SYSTEM, team=team, name="x")


def test_an_admin_changes_them_in_the_admin(client: Client, admin_user: Any, team: Team) -> None:
    admin_user.is_staff = True
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    url = reverse("admin:accounts_team_change", args=[team.pk])
    data = {
        "name": "payments",
        "description": "",
        "review_reminder_days": 5,
        "review_grace_days": 2,
        "review_pause_after_days": 20,
        "owner_grace_days": 3,
        "inactivity_retire_days": 60,
        "retirement_notice_days": 10,
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = Team.objects.get(pk=team.pk)
    assert (saved.review_grace_days, saved.inactivity_retire_days) == (2, 60)


def test_reviews_are_read_only_in_the_admin(client: Client, admin_user: Any) -> None:
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    assert client.get(reverse("admin:reviews_review_changelist")).status_code == 200
    assert client.get(reverse("admin:reviews_review_add")).status_code == 403
    assert not Review.objects.exists()
