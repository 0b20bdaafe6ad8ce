"""Granting and revoking access to one agent from its page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import get_perms

from oversight.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _grant(client: Client, user: Any, agent: Any, grantee: Any, level: str, **headers: Any) -> Any:
    client.force_login(user)
    url = reverse("agents:access-grant", args=[agent.slug])
    return client.post(url, {"user": grantee.pk, "level": level}, **headers)


def _revoke(client: Client, user: Any, agent: Any, grantee: Any, **headers: Any) -> Any:
    client.force_login(user)
    return client.post(reverse("agents:access-revoke", args=[agent.slug, grantee.pk]), **headers)


def test_the_owner_grants_a_reviewer_read_and_approve(
    client: Client, owner: Any, reviewer: Any, agent: Any
) -> None:
    response = _grant(client, owner, agent, reviewer, "reviewer")
    assert response.status_code == 302
    assert set(get_perms(reviewer, agent)) == {"view_agent", "approve_agent"}
    event = AuditEvent.objects.get(verb="agent.access_granted")
    assert event.actor_label == "alice"
    assert event.after == {"access of rita": ["approve_agent", "view_agent"]}


def test_with_htmx_the_panel_is_returned_in_place(
    client: Client, owner: Any, auditor: Any, agent: Any
) -> None:
    response = _grant(client, owner, agent, auditor, "viewer", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="agent-access"' in body and "<html" not in body
    assert "aaron" in body and "viewer" in body


def test_granting_the_same_access_twice_records_once(
    client: Client, owner: Any, auditor: Any, agent: Any
) -> None:
    _grant(client, owner, agent, auditor, "viewer")
    _grant(client, owner, agent, auditor, "viewer")
    assert AuditEvent.objects.filter(verb="agent.access_granted").count() == 1


def test_a_teammate_cannot_grant(client: Client, teammate: Any, reviewer: Any, agent: Any) -> None:
    assert _grant(client, teammate, agent, reviewer, "reviewer").status_code == 403
    assert get_perms(reviewer, agent) == []


def test_an_outsider_gets_404(client: Client, outsider: Any, reviewer: Any, agent: Any) -> None:
    assert _grant(client, outsider, agent, reviewer, "reviewer").status_code == 404
    assert _revoke(client, outsider, agent, reviewer).status_code == 404


def test_an_unknown_level_changes_nothing(
    client: Client, owner: Any, reviewer: Any, agent: Any
) -> None:
    response = _grant(client, owner, agent, reviewer, "superuser", HTTP_HX_REQUEST="true")
    assert "Select a valid choice" in response.content.decode()
    assert get_perms(reviewer, agent) == []
    assert not AuditEvent.objects.filter(verb="agent.access_granted").exists()


def test_get_is_not_allowed(client: Client, owner: Any, agent: Any) -> None:
    client.force_login(owner)
    assert client.get(reverse("agents:access-grant", args=[agent.slug])).status_code == 405


def test_csrf_is_enforced(owner: Any, reviewer: Any, agent: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    assert _grant(client, owner, agent, reviewer, "reviewer").status_code == 403


def test_the_owner_revokes_access_and_it_is_audited(
    client: Client, owner: Any, reviewer: Any, agent: Any
) -> None:
    _grant(client, owner, agent, reviewer, "reviewer")
    assert _revoke(client, owner, agent, reviewer).status_code == 302
    assert get_perms(reviewer, agent) == []
    event = AuditEvent.objects.get(verb="agent.access_revoked")
    assert event.before == {"access of rita": ["approve_agent", "view_agent"]}
    client.force_login(reviewer)
    assert client.get(reverse("agents:detail", args=[agent.slug])).status_code == 404


def test_with_htmx_a_change_of_access_has_the_pages_history_read_again(
    client: Client, owner: Any, auditor: Any, agent: Any
) -> None:
    granted = _grant(client, owner, agent, auditor, "viewer", HTTP_HX_REQUEST="true")
    assert json.loads(granted["HX-Trigger"]).keys() == {"agent-history-changed"}
    refused = _grant(client, owner, agent, auditor, "nonsense", HTTP_HX_REQUEST="true")
    assert "HX-Trigger" not in refused
    revoked = _revoke(client, owner, agent, auditor, HTTP_HX_REQUEST="true")
    assert json.loads(revoked["HX-Trigger"]).keys() == {"agent-history-changed"}


def test_the_owners_own_access_cannot_be_revoked(
    client: Client, admin_user: Any, owner: Any, agent: Any
) -> None:
    response = _revoke(client, admin_user, agent, owner, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "access follows ownership" in response.content.decode()
    assert set(get_perms(owner, agent)) >= {"view_agent", "change_agent"}
    assert not AuditEvent.objects.filter(verb="agent.access_revoked").exists()
    assert "HX-Trigger" not in response  # nothing changed


def test_the_detail_page_lists_who_has_access(
    client: Client, owner: Any, reviewer: Any, teammate: Any, agent: Any
) -> None:
    _grant(client, owner, agent, reviewer, "reviewer")
    client.force_login(teammate)
    body = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert "Rita" in body or "rita" in body
    assert "Grant access" not in body  # a teammate may look, not change


def test_a_reviewer_made_a_viewer_no_longer_approves(
    client: Client, owner: Any, reviewer: Any, agent: Any
) -> None:
    _grant(client, owner, agent, reviewer, "reviewer")
    _grant(client, owner, agent, reviewer, "viewer")
    assert set(get_perms(reviewer, agent)) == {"view_agent"}
    event = AuditEvent.objects.filter(verb="agent.access_granted").latest("seq")
    assert (event.before, event.after) == (
        {"access of rita": ["approve_agent", "view_agent"]},
        {"access of rita": ["view_agent"]},
    )


def test_the_same_level_again_says_nothing_changed(
    client: Client, owner: Any, reviewer: Any, agent: Any
) -> None:
    _grant(client, owner, agent, reviewer, "reviewer")
    response = _grant(client, owner, agent, reviewer, "reviewer", HTTP_HX_REQUEST="true")
    assert "rita has reviewer access already; nothing changed." in response.content.decode()


def test_without_htmx_bad_input_is_said_on_the_page_and_changes_nothing(
    client: Client, owner: Any, reviewer: Any, agent: Any
) -> None:
    client.force_login(owner)
    url = reverse("agents:access-grant", args=[agent.slug])
    for body in ({"user": 999999, "level": "reviewer"}, {"user": reviewer.pk, "level": "owner"}):
        page = client.post(url, body, follow=True).content.decode()
        assert "Access not given:" in page, body
    assert not get_perms(reviewer, agent)
    assert not AuditEvent.objects.filter(verb="agent.access_granted").exists()
    page = client.post(url, {"user": reviewer.pk, "level": "viewer"}, follow=True)
    assert "Access given." in page.content.decode()
