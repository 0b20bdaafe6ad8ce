"""The kill-switch button: who may press it, and what it asks for."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.audit.models import AuditEvent
from oversight.killswitch.models import KillSwitch

pytestmark = pytest.mark.django_db


def _engage(client: Client, user: Any, scope: str, **extra: str) -> Any:
    client.force_login(user)
    data = {"scope": scope, "reason": "incident 12", "confirm": "yes", **extra}
    return client.post(reverse("killswitch:engage"), data)


def _engaged() -> list[str]:
    return [f"{s.scope}:{s.team or s.agent or ''}" for s in KillSwitch.objects.filter(engaged=True)]


def test_an_admin_stops_everything_and_every_page_shows_it(
    client: Client, admin_user: Any, owner: Any, agent: Any
) -> None:
    response = _engage(client, admin_user, "global")
    assert response.status_code == 302
    assert _engaged() == ["global:"]
    event = AuditEvent.objects.get(verb="killswitch.engaged")
    assert event.actor_label == "ada" and event.after["reason"] == "incident 12"
    client.force_login(owner)
    page = client.get(reverse("agents:list")).content.decode()
    assert "Kill switch engaged" in page and "incident 12" in page


@pytest.mark.parametrize("who", ["owner", "teammate", "reviewer"])
def test_only_admins_stop_everything(
    client: Client, request: pytest.FixtureRequest, agent: Any, who: str
) -> None:
    assert _engage(client, request.getfixturevalue(who), "global").status_code == 403
    assert _engaged() == []


def test_the_owner_stops_their_agent_but_not_another(
    client: Client, owner: Any, agent: Any, other_agent: Any
) -> None:
    assert _engage(client, owner, "agent:refund-bot").status_code == 302
    assert _engage(client, owner, "agent:email-campaigner").status_code == 404
    assert _engaged() == ["agent:Refund bot"]


def test_an_owner_in_the_team_stops_the_team_a_teammate_without_the_role_may_not(
    client: Client, owner: Any, teammate: Any, team: Any, agent: Any
) -> None:
    assert _engage(client, teammate, "team:payments").status_code == 403
    assert _engage(client, owner, "team:payments").status_code == 302
    assert _engaged() == ["team:payments"]


def test_it_asks_for_a_reason_and_nothing_more(client: Client, admin_user: Any) -> None:
    _engage(client, admin_user, "global", reason="  ")
    assert _engaged() == []
    assert not AuditEvent.objects.filter(verb="killswitch.engaged").exists()
    _engage(client, admin_user, "global", confirm="")  # the menu has no confirmation box
    assert _engaged() == ["global:"]


def test_the_scope_may_be_chosen_from_the_menus_list(
    client: Client, owner: Any, agent: Any, other_agent: Any
) -> None:
    response = _engage(client, owner, "other", other="")
    assert response.status_code == 302 and _engaged() == []
    assert _engage(client, owner, "other", other="agent:email-campaigner").status_code == 404
    assert _engage(client, owner, "other", other="agent:refund-bot").status_code == 302
    assert _engaged() == ["agent:Refund bot"]


def test_releasing_needs_a_reason_and_is_audited(client: Client, admin_user: Any) -> None:
    _engage(client, admin_user, "global")
    client.post(reverse("killswitch:release"), {"scope": "global", "reason": ""})
    assert _engaged() == ["global:"]
    client.post(reverse("killswitch:release"), {"scope": "global", "reason": "fixed the bug"})
    assert _engaged() == []
    assert AuditEvent.objects.get(verb="killswitch.released").after["reason"] == "fixed the bug"


def test_an_unknown_scope_is_404(client: Client, admin_user: Any) -> None:
    assert _engage(client, admin_user, "agent:no-such-agent").status_code == 404
    assert _engage(client, admin_user, "everything").status_code == 404


def test_it_goes_back_only_to_this_site(client: Client, admin_user: Any) -> None:
    response = _engage(client, admin_user, "global", next="https://evil.example/")
    assert response["Location"] == reverse("home")
    response = client.post(
        reverse("killswitch:release"), {"scope": "global", "reason": "ok", "next": "/agents/"}
    )
    assert response["Location"] == "/agents/"


def test_csrf_is_enforced(admin_user: Any) -> None:
    assert _engage(Client(enforce_csrf_checks=True), admin_user, "global").status_code == 403


def test_the_menu_offers_the_pages_agent_its_team_and_what_is_engaged(
    client: Client, owner: Any, teammate: Any, admin_user: Any, team: Any, agent: Any
) -> None:
    def buttons(user: Any, url: str) -> list[str]:
        client.force_login(user)
        page = client.get(url).content.decode()
        return re.findall(r'<button type="submit" name="scope" value="([^"]+)"[^>]*>([^<]+)<', page)

    agent_page = reverse("agents:detail", args=["refund-bot"])
    assert buttons(owner, agent_page) == [
        ("agent:refund-bot", "Stop Refund bot"),
        ("team:payments", "Stop team payments"),
        ("other", "Stop it"),
    ]
    assert buttons(owner, reverse("team", args=["payments"])) == [
        ("team:payments", "Stop team payments"),
        ("other", "Stop it"),
    ]
    assert buttons(owner, reverse("approvals:queue")) == [("other", "Stop it")]
    assert buttons(admin_user, reverse("approvals:queue")) == [
        ("global", "Stop every agent"),
        ("other", "Stop it"),
    ]
    # A teammate without the owner role may stop nothing: no menu at all.
    assert buttons(teammate, agent_page) == []
    assert "Kill switch</summary>" not in client.get(agent_page).content.decode()

    _engage(client, admin_user, "team:payments")
    assert buttons(admin_user, reverse("approvals:queue")) == [
        ("global", "Stop every agent"),
        ("team:payments", "Release team payments"),
        ("other", "Stop it"),
    ]


def test_the_menus_list_holds_what_the_person_may_stop(
    client: Client, owner: Any, admin_user: Any, reviewer: Any, agent: Any, other_agent: Any
) -> None:
    url = reverse("killswitch:scopes")
    client.force_login(owner)
    options = client.get(url).content.decode()
    assert 'value="team:payments"' in options and 'value="agent:refund-bot"' in options
    assert "email-campaigner" not in options and "growth" not in options
    assert 'value="global"' not in options
    client.force_login(admin_user)
    options = client.get(url).content.decode()
    for value in ("global", "team:payments", "team:growth", "agent:refund-bot"):
        assert f'value="{value}"' in options
    client.force_login(reviewer)
    assert 'value="agent:' not in client.get(url).content.decode()
