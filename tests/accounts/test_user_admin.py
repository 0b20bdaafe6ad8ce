"""People's roles and teams are groups, given on the admin site: each change is audited,
and someone removed from a team is sent nothing more of it over an open socket."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from oversight.agents.services import token_create
from oversight.audit.models import AuditEvent
from tests.conftest import SYSTEM
from tests.forms import form_data
from tests.gateway.helpers import decide, grant_refunds, refund
from tests.live.sockets import NEW_ROW, ORIGIN, connect, in_thread, live_socket, session_cookie

QUIET = 0.5


@pytest.fixture
def site_admin(django_user_model: Any) -> Any:
    """Someone who may use the admin site (staff): people's groups are given there."""
    return django_user_model.objects.create_superuser("root", "root@example.com", "x")


def _save_groups(site_admin: Any, person: Any, groups: list[Group]) -> None:
    """The admin's change form for `person`, sent as shown but for their groups."""
    client = Client()
    client.force_login(site_admin)
    page = reverse("admin:auth_user_change", args=[person.pk])
    data = form_data(client.get(page).content, "user_form")
    data["groups"] = [str(group.pk) for group in groups]
    response = client.post(page, data)
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.mark.django_db
def test_a_change_of_someones_groups_is_audited_with_who_made_it(
    site_admin: Any, teammate: Any, agent: Any
) -> None:
    auditors = Group.objects.get_or_create(name="auditor")[0]
    _save_groups(site_admin, teammate, [auditors])

    event = AuditEvent.objects.get(verb="user.access_changed")
    assert event.actor_label == site_admin.get_username()
    assert event.target_label == teammate.get_username()
    assert event.before == {"groups": ["team:payments"]}
    assert event.after == {"groups": ["auditor"]}
    _save_groups(site_admin, teammate, [auditors])  # saved as it is: nothing recorded
    assert AuditEvent.objects.filter(verb="user.access_changed").count() == 1


@pytest.mark.django_db
def test_a_person_added_on_the_admin_site_is_audited_with_who_added_them(
    site_admin: Any,
) -> None:
    """Adding nora left no event; deactivating someone did."""
    client = Client()
    client.force_login(site_admin)
    page = reverse("admin:auth_user_add")
    data = {
        "username": "nora",
        "password1": "nora-Demo-2026-xyz",
        "password2": "nora-Demo-2026-xyz",
    }
    data |= {"usable_password": "true"}
    response = client.post(page, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(verb="user.created")
    assert (event.actor_label, event.target_label) == ("root", "nora")
    assert event.before is None and event.after["is_active"] is True


@pytest.mark.django_db(transaction=True)
def test_someone_removed_from_the_team_is_sent_nothing_more_of_it(
    site_admin: Any, teammate: Any, agent: Any
) -> None:
    grant_refunds(agent)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    cookie = session_cookie(teammate)

    async def scenario() -> tuple[list[str], bool]:
        socket = live_socket(ORIGIN, cookie, path="/ws/live/?show=feed")
        assert (await connect(socket))[0]
        seen = await in_thread(decide, token, refund(10))
        before = NEW_ROW.findall(await socket.receive_from(timeout=3))
        assert before == [str(seen.pk)]
        await in_thread(_save_groups, site_admin, teammate, [])
        await in_thread(decide, token, refund(20, charges=("ch_after_removal",)))
        nothing = await socket.receive_nothing(timeout=QUIET)
        await socket.disconnect()
        return before, nothing

    _before, got_nothing = async_to_sync(scenario)()
    assert got_nothing
