"""Registering an agent: who may, what is validated, and what a registration leaves behind."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import get_perms

from oversight.agents.models import Agent
from oversight.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

URL = reverse("agents:create")


def _form(owner: Any, team: Any, /, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Dispute drafter",
        "slug": "dispute-drafter",
        "purpose": "Drafts evidence for card disputes.",
        "owner": owner.pk,
        "team": team.pk,
        "environments": ["staging", "production"],
        "risk_tier": "high",
        "review_interval_days": 30,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def _post(client: Client, user: Any, data: dict[str, Any], **headers: str) -> Any:
    client.force_login(user)
    return client.post(URL, data, headers=headers)


def test_it_redirects_anonymous_visitors_to_login(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("who", ["owner", "admin_user"])
def test_owners_and_admins_get_the_form(
    client: Client, request: pytest.FixtureRequest, team: Any, who: str
) -> None:
    client.force_login(request.getfixturevalue(who))
    response = client.get(URL)
    assert response.status_code == 200
    assert "Register an agent" in response.content.decode()


def test_an_owner_registers_an_agent_in_their_team(client: Client, owner: Any, team: Any) -> None:
    response = _post(client, owner, _form(owner, team))
    assert response.status_code == 302
    assert response["Location"] == reverse("agents:detail", args=["dispute-drafter"])
    agent = Agent.objects.get(slug="dispute-drafter")
    assert (agent.owner, agent.team, agent.risk_tier) == (owner, team, "high")
    assert agent.environments == ["staging", "production"]


def test_an_admin_registers_an_agent_for_someone_else(
    client: Client, admin_user: Any, outsider: Any, other_team: Any
) -> None:
    response = _post(client, admin_user, _form(outsider, other_team))
    assert response.status_code == 302
    agent = Agent.objects.get(slug="dispute-drafter")
    assert (agent.owner, agent.team) == (outsider, other_team)


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_teammate_without_the_owner_role_is_forbidden(
    client: Client, teammate: Any, team: Any, method: str
) -> None:
    client.force_login(teammate)
    response = getattr(client, method)(URL, _form(teammate, team))
    assert response.status_code == 403
    assert not Agent.objects.exists()


@pytest.mark.parametrize("who", ["reviewer", "auditor"])
def test_reviewers_and_auditors_may_not_register_agents(
    client: Client, request: pytest.FixtureRequest, team: Any, who: str
) -> None:
    person = request.getfixturevalue(who)
    response = _post(client, person, _form(person, team))
    assert response.status_code == 403
    assert not Agent.objects.exists()


def test_an_owner_cannot_pick_a_team_they_are_not_in(
    client: Client, owner: Any, team: Any, other_team: Any
) -> None:
    response = _post(client, owner, _form(owner, other_team))
    assert response.status_code == 200
    assert "team" in response.context["form"].errors
    assert not Agent.objects.exists()


def test_an_owner_cannot_name_someone_else_as_owner(
    client: Client, owner: Any, teammate: Any, team: Any
) -> None:
    response = _post(client, owner, _form(teammate, team))
    assert response.status_code == 200
    assert "owner" in response.context["form"].errors
    assert not Agent.objects.exists()


@pytest.mark.parametrize("missing", ["owner", "purpose"])
def test_a_missing_owner_or_purpose_is_a_form_error(
    client: Client, owner: Any, team: Any, missing: str
) -> None:
    events = AuditEvent.objects.count()
    response = _post(client, owner, _form(owner, team, **{missing: None}))
    assert response.status_code == 200
    assert missing in response.context["form"].errors
    assert not Agent.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_duplicate_slug_is_a_form_error(
    client: Client, owner: Any, team: Any, agent: Any
) -> None:
    response = _post(client, owner, _form(owner, team, name="Another", slug=agent.slug))
    assert response.status_code == 200
    assert "already exists" in str(response.context["form"].errors["slug"])
    assert Agent.objects.filter(slug=agent.slug).count() == 1
    assert Agent.objects.get(slug=agent.slug).name == "Refund bot"


def test_a_name_that_slugifies_to_a_taken_slug_is_a_form_error(
    client: Client, owner: Any, team: Any, agent: Any
) -> None:
    response = _post(client, owner, _form(owner, team, name="Refund Bot", slug=""))
    assert response.status_code == 200
    assert response.context["form"].errors
    assert Agent.objects.count() == 1


def test_it_enforces_csrf(owner: Any, team: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(URL, _form(owner, team))
    assert response.status_code == 403
    assert not Agent.objects.exists()


def test_it_accepts_a_post_with_the_csrf_token(owner: Any, team: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    client.get(URL)
    token = client.cookies["csrftoken"].value
    response = client.post(URL, {**_form(owner, team), "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Agent.objects.filter(slug="dispute-drafter").exists()


def test_the_owner_may_change_it_and_the_team_may_view_it(
    client: Client, owner: Any, teammate: Any, team: Any
) -> None:
    _post(client, owner, _form(owner, team))
    agent = Agent.objects.get(slug="dispute-drafter")
    assert set(get_perms(owner, agent)) == {"view_agent", "change_agent"}
    assert set(get_perms(team.group, agent)) == {"view_agent"}
    assert set(get_perms(teammate, agent)) == {"view_agent"}


def test_it_records_who_created_it_with_the_request_id(
    client: Client, owner: Any, team: Any
) -> None:
    response = _post(client, owner, _form(owner, team))
    agent = Agent.objects.get(slug="dispute-drafter")
    event = AuditEvent.objects.get(verb="agent.created", agent_id=agent.pk)
    assert response["X-Request-ID"]
    assert event.request_id == response["X-Request-ID"]
    assert (event.actor_type, event.actor_label, event.actor_user_id) == ("user", "alice", owner.pk)
    assert event.before is None
    assert event.after["slug"] == "dispute-drafter"
    assert event.after["owner"] == "alice"
    assert event.after["team"] == "payments"


def test_a_well_formed_incoming_request_id_is_kept(client: Client, owner: Any, team: Any) -> None:
    response = _post(client, owner, _form(owner, team), **{"X-Request-ID": "lb-7f3a:42"})
    assert response["X-Request-ID"] == "lb-7f3a:42"
    assert AuditEvent.objects.get(verb="agent.created").request_id == "lb-7f3a:42"


def test_a_malformed_incoming_request_id_is_replaced(client: Client, owner: Any, team: Any) -> None:
    response = _post(client, owner, _form(owner, team), **{"X-Request-ID": "bad id; drop"})
    assert response["X-Request-ID"] != "bad id; drop"
    assert AuditEvent.objects.get(verb="agent.created").request_id == response["X-Request-ID"]


def test_the_first_review_is_due_one_interval_from_today(
    client: Client, owner: Any, team: Any
) -> None:
    _post(client, owner, _form(owner, team, review_interval_days=45))
    agent = Agent.objects.get(slug="dispute-drafter")
    assert agent.next_review_due == timezone.localdate() + dt.timedelta(days=45)


def test_the_review_date_counts_from_today_in_the_configured_time_zone(
    client: Client, owner: Any, team: Any, settings: Any
) -> None:
    """TIME_ZONE is a deployment setting; "today" is the local date, not the UTC one."""
    # Pick a zone whose date differs from UTC's right now, whatever the hour.
    utc_hour = timezone.now().hour
    settings.TIME_ZONE = "Pacific/Kiritimati" if utc_hour >= 12 else "Etc/GMT+12"
    assert timezone.localdate() != timezone.now().date()
    _post(client, owner, _form(owner, team, review_interval_days=45))
    agent = Agent.objects.get(slug="dispute-drafter")
    assert agent.next_review_due == timezone.localdate() + dt.timedelta(days=45)
    assert not agent.review_overdue
