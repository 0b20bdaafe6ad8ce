"""A team's change control on its page: admins choose from which risk tier changes need an
approved, staged rollout, and whether every grant must say if it can be undone."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.accounts.models import Team
from oversight.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_an_admin_sets_the_teams_change_control_and_it_is_audited(
    client: Client, admin_user: Any, team: Team
) -> None:
    client.force_login(admin_user)
    url = reverse("team-change-control", args=[team.slug])
    trace = "https://tracing.example.com/trace/{trace_id}"
    response = client.post(
        url, {"staged_releases_from": "high", "require_reversibility": "on", "trace_url": trace}
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.staged_releases_from, team.require_reversibility) == ("high", True)
    assert team.trace_url == trace
    event = AuditEvent.objects.filter(verb="team.updated").latest("seq")
    assert event.after["staged_releases_from"] == "high"
    page = client.get(reverse("team", args=[team.slug])).content.decode()
    assert 'value="high" selected' in page


@pytest.mark.parametrize(
    "data",
    [
        {"staged_releases_from": "extreme"},
        {"staged_releases_from": "high", "trace_url": "http://tracing.example.com/{trace_id}"},
        {"staged_releases_from": "high", "trace_url": "https://tracing.example.com/"},
    ],
)
def test_bad_input_changes_nothing(
    client: Client, admin_user: Any, team: Team, data: dict[str, str]
) -> None:
    client.force_login(admin_user)
    url = reverse("team-change-control", args=[team.slug])
    response = client.post(url, data, follow=True)
    assert response.status_code == 422
    page = response.content.decode()
    assert "Not saved" in page
    team.refresh_from_db()
    assert (team.staged_releases_from, team.trace_url) == ("", "")
    # The form keeps what was typed (it came back as the team's saved settings).
    if data.get("trace_url"):
        assert f'name="trace_url" value="{data["trace_url"]}"' in page
    if data["staged_releases_from"] == "high":
        assert '<option value="high" selected>' in page


def test_a_refused_change_keeps_every_field_typed(
    client: Client, admin_user: Any, team: Team
) -> None:
    client.force_login(admin_user)
    url = reverse("team-change-control", args=[team.slug])
    typed = {
        "staged_releases_from": "critical",
        "require_reversibility": "on",
        "trace_url": "https://trace.example.com/no-placeholder",
    }
    page = client.post(url, typed).content.decode()
    assert "Not saved: An https URL with {trace_id} in it." in page
    assert '<option value="critical" selected>' in page
    assert 'name="require_reversibility" checked' in page
    assert 'value="https://trace.example.com/no-placeholder"' in page
    team.refresh_from_db()
    assert (team.staged_releases_from, team.require_reversibility) == ("", False)


def test_only_admins_change_it_and_the_form_needs_its_csrf_token(
    admin_user: Any, owner: Any, team: Team
) -> None:
    url = reverse("team-change-control", args=[team.slug])
    client = Client()
    client.force_login(owner)
    assert client.post(url, {"staged_releases_from": "low"}).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.post(url, {"staged_releases_from": "low"}).status_code == 403
    team.refresh_from_db()
    assert team.staged_releases_from == ""
