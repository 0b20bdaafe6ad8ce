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

_PERIODS = {
    "review_reminder_days": 5,
    "review_grace_days": 2,
    "review_pause_after_days": 20,
    "owner_grace_days": 3,
    "inactivity_retire_days": 60,
    "retirement_notice_days": 10,
}


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
    response = client.post(url, {"name": "payments", "description": "", **_PERIODS})
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


# --- In the browser's pages: /teams/<slug>/reviews/ ---------------------------------------


def _url(team: Team) -> str:
    return reverse("team-reviews", args=[team.slug])


def _periods(team: Team) -> dict[str, int]:
    saved = Team.objects.get(pk=team.pk)
    return {name: getattr(saved, name) for name in _PERIODS}


def test_an_admin_changes_the_periods_on_the_teams_page(
    client: Client, admin_user: Any, team: Team
) -> None:
    client.force_login(admin_user)
    page = client.get(_url(team))
    assert page.status_code == 200
    assert b'name="review_pause_after_days"' in page.content
    response = client.post(_url(team), _PERIODS, follow=True)
    assert response.redirect_chain == [(_url(team), 302)]
    assert b"Re-certification periods of payments saved." in response.content
    assert _periods(team) == _PERIODS
    event = AuditEvent.objects.get(verb="team.updated", target_id=str(team.pk))
    assert event.actor_label == admin_user.username
    assert (event.before["review_grace_days"], event.after["review_grace_days"]) == (7, 2)


def test_bad_periods_are_refused_with_a_reason_and_change_nothing(
    client: Client, admin_user: Any, team: Team
) -> None:
    client.force_login(admin_user)
    before = _periods(team)
    for bad, why in (
        ({"review_pause_after_days": 1}, b"Pause no sooner than the admins are told."),
        ({"retirement_notice_days": 60}, b"The notice must come after some days of inactivity."),
        ({"inactivity_retire_days": 0}, b"greater than or equal to 1"),
        ({"review_grace_days": "soon"}, b"Enter a whole number."),
        ({"owner_grace_days": 4000}, b"less than or equal to 3650"),
    ):
        response = client.post(_url(team), {**_PERIODS, **bad})
        assert response.status_code == 200
        assert why in response.content, bad
        assert _periods(team) == before
    assert not AuditEvent.objects.filter(verb="team.updated").exists()


def test_members_see_the_periods_and_only_admins_change_them(
    client: Client, owner: Any, teammate: Any, team: Team
) -> None:
    for user in (owner, teammate):
        client.force_login(user)
        page = client.get(_url(team))
        assert page.status_code == 200
        assert b'id="setting-review_pause_after_days">30 days' in page.content
        assert b"<form" not in page.content.split(b"<main", 1)[-1].split(b"</main>")[0]
        assert client.post(_url(team), _PERIODS).status_code == 403
    assert _periods(team)["review_grace_days"] == 7


def test_outside_the_team_it_is_not_found(client: Client, outsider: Any, team: Team) -> None:
    client.force_login(outsider)
    assert client.get(_url(team)).status_code == 404
    assert client.post(_url(team), _PERIODS).status_code == 404
    assert _periods(team)["review_grace_days"] == 7


def test_a_change_needs_the_csrf_token(admin_user: Any, team: Team) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(_url(team), _PERIODS).status_code == 403
    assert _periods(team)["review_grace_days"] == 7
