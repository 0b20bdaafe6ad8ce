"""The kill-switch button: who may press it, and what it asks for."""

from __future__ import annotations

import datetime as dt
import html
import re
import threading
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.audit.models import AuditEvent
from oversight.incidents.models import Incident
from oversight.killswitch.models import KillSwitch, Scope
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import AlreadyEngagedError, killswitch_engage
from tests.conftest import SYSTEM

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


def _flash(response: Any) -> str:
    """The newest message (those of earlier presses wait unread: nothing followed the
    redirects)."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


def test_the_flash_names_the_agent_as_the_banner_does(
    client: Client, owner: Any, agent: Any
) -> None:
    response = _engage(client, owner, "agent:refund-bot")
    assert _flash(response) == (
        "Kill switch for agent Refund bot engaged: halted from the next decision on."
    )
    response = client.post(
        reverse("killswitch:release"), {"scope": "agent:refund-bot", "reason": "fixed"}
    )
    assert _flash(response) == "Kill switch for agent Refund bot released."


def test_engaging_an_engaged_switch_changes_nothing_and_says_since_when_by_whom(
    client: Client,
    owner: Any,
    agent: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _engage(client, owner, "agent:refund-bot", reason="QA: refund bot misbehaving")
    switch = KillSwitch.objects.get()
    events = AuditEvent.objects.count()
    incidents = Incident.objects.count()
    with django_capture_on_commit_callbacks() as callbacks:
        response = _engage(client, owner, "agent:refund-bot", reason="once more, louder")
    assert response.status_code == 302
    since = timezone.localtime(switch.changed_at).strftime("%Y-%m-%d %H:%M %Z")
    assert _flash(response) == (
        f"The kill switch for agent Refund bot is already engaged since {since} by alice: "
        "QA: refund bot misbehaving"
    )
    again = KillSwitch.objects.get()
    assert (again.reason, again.changed_at, again.changed_by) == (
        "QA: refund bot misbehaving",
        switch.changed_at,
        owner,
    )
    assert callbacks == []  # no broadcast, no "engaged" notification
    assert AuditEvent.objects.count() == events
    assert Incident.objects.count() == incidents
    page = client.get(reverse("agents:list")).content.decode()
    assert "QA: refund bot misbehaving" in page and "once more, louder" not in page


def _press_at_once(target: Target, reason: str, barrier: threading.Barrier, out: list[Any]) -> None:
    try:
        barrier.wait()
        out.append(killswitch_engage(actor=SYSTEM, target=target, reason=reason))
    except AlreadyEngagedError as exc:
        out.append(exc)
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_presses_at_once_engage_once(agent: Any) -> None:
    target = Target(Scope.AGENT, agent=agent)
    barrier = threading.Barrier(2)
    out: list[Any] = []
    threads = [
        threading.Thread(target=_press_at_once, args=(target, reason, barrier, out))
        for reason in ("first", "second")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engaged = [o for o in out if isinstance(o, KillSwitch)]
    refused = [o for o in out if isinstance(o, AlreadyEngagedError)]
    assert (len(engaged), len(refused)) == (1, 1)
    assert KillSwitch.objects.get().reason == engaged[0].reason
    assert refused[0].messages[0].endswith(f": {engaged[0].reason}")
    assert AuditEvent.objects.filter(verb="killswitch.engaged").count() == 1


def test_the_banners_rewind_link_is_the_half_hour_before_the_stop(
    client: Client, owner: Any, agent: Any
) -> None:
    """It read ``?since=30m``, which showed no plan at all (the form wanted a resource
    pattern), and would have meant the half hour before whenever it was followed."""
    _engage(client, owner, "agent:refund-bot")
    switch = KillSwitch.objects.get(engaged=True)
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    link = re.search(r'href="([^"]+)">Rewind what it did before the stop', page)
    assert link is not None
    url = html.unescape(link.group(1))
    path, query = url.split("?")
    assert path == reverse("rewind:plan", args=[agent.slug])
    window = {
        k: dt.datetime.fromisoformat(v[0]) for k, v in parse_qs(query).items() if k != "resource"
    }
    assert window == {
        "since": switch.changed_at - dt.timedelta(minutes=30),
        "until": switch.changed_at,  # not the actions it halted since
    }
    plan = client.get(url)
    assert plan.status_code == 200
    assert (plan.context["plan"]["since"], plan.context["plan"]["until"]) == (
        window["since"],
        window["until"],
    )


def test_the_admin_site_names_them_kill_switches(client: Client, admin_user: Any) -> None:
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    page = client.get(reverse("admin:index")).content.decode()
    assert "Kill switches" in page and "Kill switchs" not in page
