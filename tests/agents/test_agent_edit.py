"""Editing an agent: who may, what the edit records, and how permissions follow the change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from guardian.shortcuts import get_perms

from oversight.accounts.services import team_change_control_update
from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant
from oversight.audit.models import AuditEvent
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def _url(agent: Any) -> str:
    return reverse("agents:edit", args=[agent.slug])


def _form(agent: Any, **overrides: Any) -> dict[str, Any]:
    """The edit form as the browser would submit it, unchanged unless overridden."""
    data = {
        "name": agent.name,
        "purpose": agent.purpose,
        "owner": agent.owner_id,
        "team": agent.team_id,
        "environments": list(agent.environments),
        "risk_tier": agent.risk_tier,
        "review_interval_days": agent.review_interval_days,
        "status": agent.status,
    }
    data.update(overrides)
    return data


def _post(client: Client, user: Any, agent: Any, **overrides: Any) -> Any:
    client.force_login(user)
    return client.post(_url(agent), _form(agent, **overrides))


def _updates(agent: Any) -> Any:
    return AuditEvent.objects.filter(verb="agent.updated", agent_id=agent.pk)


def _fresh(agent: Any) -> Agent:
    return Agent.objects.get(pk=agent.pk)


def test_it_redirects_anonymous_visitors_to_login(client: Client, agent: Any) -> None:
    response = client.get(_url(agent))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_owner_gets_the_form(client: Client, owner: Any, agent: Any) -> None:
    client.force_login(owner)
    response = client.get(_url(agent))
    assert response.status_code == 200
    assert "Edit Refund bot" in response.content.decode()


def test_the_owner_may_edit(client: Client, owner: Any, agent: Any) -> None:
    response = _post(client, owner, agent, name="Refund bot v2", risk_tier="critical")
    assert response.status_code == 302
    assert response["Location"] == reverse("agents:detail", args=[agent.slug])
    saved = _fresh(agent)
    assert (saved.name, saved.risk_tier) == ("Refund bot v2", "critical")


def test_the_message_after_a_save_names_the_release_it_made(owner: Any, agent: Any) -> None:
    """It said only "Saved Refund bot.": now which release the change became, and
    whether it is in force; a change of who answers for the agent makes none."""

    def said(**changes: Any) -> list[str]:
        response = _post(Client(), owner, _fresh(agent), **changes)
        return [str(m) for m in get_messages(response.wsgi_request)]

    assert said(instructions="Refund within policy.") == ["Saved Refund bot: release v2, in force."]
    assert said(risk_tier="critical") == ["Saved Refund bot."]
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    assert said(instructions="Refund only in policy.") == [
        "Saved Refund bot: release v3, not in force yet: v2 decides until it is rolled out"
        " (its page says how)."
    ]


def test_the_owner_chooses_the_response_to_a_serious_alert(
    client: Client, owner: Any, agent: Any
) -> None:
    assert _fresh(agent).alert_response == "hold"
    assert _post(client, owner, agent, alert_response="pause").status_code == 302
    assert _fresh(agent).alert_response == "pause"
    _post(client, owner, agent, name="Renamed")  # left out of the post: kept
    assert _fresh(agent).alert_response == "pause"
    response = _post(client, owner, agent, alert_response="explode")
    assert response.status_code == 200 and _fresh(agent).alert_response == "pause"


def test_the_slug_never_changes(client: Client, owner: Any, agent: Any) -> None:
    _post(client, owner, agent, slug="renamed", name="Renamed")
    assert _fresh(agent).slug == "refund-bot"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_teammate_who_can_view_but_not_change_gets_403(
    client: Client, teammate: Any, agent: Any, method: str
) -> None:
    client.force_login(teammate)
    response = getattr(client, method)(_url(agent), _form(agent, name="Hijacked"))
    assert response.status_code == 403
    assert _fresh(agent).name == "Refund bot"
    assert not _updates(agent).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_outsider_gets_404(client: Client, outsider: Any, agent: Any, method: str) -> None:
    client.force_login(outsider)
    response = getattr(client, method)(_url(agent), _form(agent, name="Hijacked"))
    assert response.status_code == 404
    assert _fresh(agent).name == "Refund bot"


def test_a_granted_reviewer_may_not_edit(client: Client, reviewer: Any, agent: Any) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    response = _post(client, reviewer, agent, name="Hijacked")
    assert response.status_code == 403
    assert _fresh(agent).name == "Refund bot"


def test_an_admin_may_edit(client: Client, admin_user: Any, agent: Any) -> None:
    response = _post(client, admin_user, agent, status="paused")
    assert response.status_code == 302
    assert _fresh(agent).status == "paused"


def test_an_edit_records_before_and_after_with_the_request_id(
    client: Client, owner: Any, agent: Any
) -> None:
    response = _post(client, owner, agent, risk_tier="low", environments=["staging"])
    event = _updates(agent).get()
    assert event.actor_label == "alice"
    assert event.request_id == response["X-Request-ID"]
    assert (event.before["risk_tier"], event.after["risk_tier"]) == ("high", "low")
    assert event.before["environments"] == ["staging", "production"]
    assert event.after["environments"] == ["staging"]
    assert event.after["name"] == event.before["name"] == "Refund bot"


def test_the_change_and_its_audit_event_are_written_in_one_transaction(
    client: Client, owner: Any, agent: Any
) -> None:
    """No savepoint is released or rolled back between the UPDATE and the audit INSERT."""
    client.force_login(owner)
    with CaptureQueriesContext(connection) as queries:
        client.post(_url(agent), _form(agent, risk_tier="low"))
    statements = [q["sql"].upper() for q in queries.captured_queries]
    update = next(i for i, s in enumerate(statements) if s.startswith('UPDATE "AGENTS_AGENT"'))
    insert = next(  # on PostgreSQL the append is a database function (audit/append_sql.py)
        i
        for i, s in enumerate(statements)
        if s.startswith('INSERT INTO "AUDIT_AUDITEVENT"') or "FROM AUDIT_APPEND(" in s
    )
    assert update < insert
    depth = lowest = 0
    for sql in statements[update:insert]:
        if sql.startswith("SAVEPOINT"):
            depth += 1
        elif sql.startswith(("RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            depth -= 1
        lowest = min(lowest, depth)
        assert not sql.startswith(("COMMIT", "ROLLBACK", "BEGIN"))
    assert lowest >= 0, "the transaction holding the UPDATE ended before the audit INSERT"


def test_changing_the_owner_moves_the_change_permission(
    client: Client, admin_user: Any, owner: Any, outsider: Any, agent: Any
) -> None:
    response = _post(client, admin_user, agent, owner=outsider.pk)
    assert response.status_code == 302
    saved = _fresh(agent)
    assert saved.owner == outsider
    assert "change_agent" not in get_perms(owner, saved)
    assert "change_agent" in get_perms(outsider, saved)
    event = _updates(agent).get()
    assert (event.before["owner"], event.after["owner"]) == ("alice", "mallory")


def test_the_old_owner_can_no_longer_edit_and_the_new_owner_can(
    admin_user: Any, owner: Any, outsider: Any, agent: Any
) -> None:
    _post(Client(), admin_user, agent, owner=outsider.pk)
    old, new = Client(), Client()
    old.force_login(owner)
    new.force_login(outsider)
    assert old.get(_url(agent)).status_code == 403  # still sees it through the team
    assert new.get(_url(agent)).status_code == 200


def test_changing_the_team_moves_the_team_view_permission(
    client: Client,
    admin_user: Any,
    teammate: Any,
    outsider: Any,
    team: Any,
    other_team: Any,
    agent: Any,
) -> None:
    response = _post(client, admin_user, agent, team=other_team.pk)
    assert response.status_code == 302
    saved = _fresh(agent)
    assert saved.team == other_team
    assert "view_agent" not in get_perms(team.group, saved)
    assert "view_agent" in get_perms(other_team.group, saved)
    detail = reverse("agents:detail", args=[agent.slug])
    client.force_login(teammate)
    assert client.get(detail).status_code == 404
    client.force_login(outsider)
    assert client.get(detail).status_code == 200


def test_an_owner_cannot_move_the_agent_to_a_team_they_are_not_in(
    client: Client, owner: Any, other_team: Any, agent: Any
) -> None:
    response = _post(client, owner, agent, team=other_team.pk)
    assert response.status_code == 200
    assert "team" in response.context["form"].errors
    assert _fresh(agent).team_id == agent.team_id
    assert not _updates(agent).exists()


def test_a_save_without_changes_writes_no_audit_event(
    client: Client, owner: Any, agent: Any
) -> None:
    before = AuditEvent.objects.count()
    updated_at = agent.updated_at
    response = _post(client, owner, agent)
    assert response.status_code == 302
    assert AuditEvent.objects.count() == before
    assert _fresh(agent).updated_at == updated_at


def test_a_deactivated_user_cannot_be_made_owner(
    client: Client, admin_user: Any, teammate: Any, agent: Any
) -> None:
    teammate.is_active = False
    teammate.save()
    response = _post(client, admin_user, agent, owner=teammate.pk)
    assert response.status_code == 200
    assert "owner" in response.context["form"].errors
    saved = _fresh(agent)
    assert saved.owner_id == agent.owner_id
    assert "change_agent" not in get_perms(teammate, saved)
    assert not _updates(agent).exists()


def test_an_agent_whose_owner_was_deactivated_must_be_given_a_new_owner(
    client: Client, admin_user: Any, owner: Any, agent: Any
) -> None:
    owner.is_active = False
    owner.save()
    response = _post(client, admin_user, agent, name="Renamed")
    assert response.status_code == 200
    assert "deactivated" in response.content.decode()
    assert _fresh(agent).name == "Refund bot"
    assert not _updates(agent).exists()


@pytest.mark.parametrize("interval", [0, -5, 731])
def test_an_out_of_range_review_interval_is_refused(
    client: Client, owner: Any, agent: Any, interval: int
) -> None:
    response = _post(client, owner, agent, review_interval_days=interval, name="Renamed")
    assert response.status_code == 200
    errors = response.context["form"].errors["review_interval_days"]
    assert any("greater than or equal to" in e or "less than or equal to" in e for e in errors)
    saved = _fresh(agent)
    assert (saved.review_interval_days, saved.name) == (agent.review_interval_days, "Refund bot")
    assert not _updates(agent).exists()


def test_a_new_review_interval_moves_the_next_review_date(
    client: Client, owner: Any, agent: Any
) -> None:
    _post(client, owner, agent, review_interval_days=10)
    saved = _fresh(agent)
    assert saved.next_review_due == (saved.created_at + dt.timedelta(days=10)).date()
