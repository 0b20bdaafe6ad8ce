"""Incidents open by themselves (kill switch, critical alert, failed undo), by hand from
the browser or the API, and are handled by the right people only."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.accounts.services import personal_token_create
from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway.lifecycle import ResultInput, action_report_result
from oversight.incidents.models import AnalysisState, Incident, IncidentStatus, TriggerKind
from oversight.incidents.services import incident_open
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage, killswitch_release
from oversight.monitoring.constants import AlertKind, Severity
from oversight.monitoring.services import Finding, alert_raise
from oversight.rewind.services import Report, action_undo, compensation_report
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, grant_reversible_refunds, refund

pytestmark = pytest.mark.django_db


def _finding(agent: Agent, severity: str, key: str = "volume") -> Finding:
    return Finding(
        agent_id=agent.pk,
        kind=AlertKind.VOLUME,
        severity=severity,
        dedupe_key=key,
        title=f"{severity} volume",
        numbers={"actions": 900},
    )


def test_a_kill_switch_opens_an_incident_and_a_second_press_joins_it(
    agent: Agent, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    target = Target(scope="agent", agent=agent)
    with django_capture_on_commit_callbacks(execute=True):
        killswitch_engage(actor=Actor.for_user(owner), target=target, reason="refunds gone wild")
    incident = Incident.objects.get()
    assert (incident.scope, incident.agent, incident.status) == ("agent", agent, "open")
    assert incident.title == "Kill switch engaged for agent Refund bot: refunds gone wild"
    trigger = incident.triggers.get()
    assert (trigger.kind, trigger.target_type) == (TriggerKind.KILL_SWITCH, "killswitch.killswitch")
    # The analysis ran once the press committed (eager tasks here).
    assert incident.__class__.objects.get().analysis_state == AnalysisState.DONE
    assert AuditEvent.objects.filter(verb="incident.opened", agent_id=agent.pk).exists()

    killswitch_release(actor=Actor.for_user(owner), target=target, reason="fixed")
    killswitch_engage(actor=Actor.for_user(owner), target=target, reason="again")
    assert Incident.objects.count() == 1
    assert incident.triggers.count() == 2


def test_what_set_it_off_is_said_once(agent: Agent, owner: Any) -> None:
    """It read "Kill switch engaged: Kill switch engaged for agent ..."."""
    target = Target(scope="agent", agent=agent)
    killswitch_engage(actor=Actor.for_user(owner), target=target, reason="refunds gone wild")
    incident = Incident.objects.get()
    page = _client(owner).get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "Kill switch engaged: Kill switch engaged" not in page
    assert f"Kill switch engaged for agent {agent.name}: refunds gone wild" in page
    trigger = incident.triggers.get()
    trigger.summary = "by hand"
    assert trigger.described == "Kill switch engaged: by hand"


def test_the_kill_switch_banner_leads_to_the_incident_it_opened(
    agent: Agent, owner: Any, outsider: Any
) -> None:
    """ "See the incident" on the banner led to the list of incidents; it now leads to
    the one that switch opened, for those who may see it (the list for the others)."""
    target = Target(scope="agent", agent=agent)
    killswitch_engage(actor=Actor.for_user(owner), target=target, reason="refunds gone wild")
    incident = Incident.objects.get()
    switch_id = int(incident.triggers.get().target_id)
    banner = _client(owner).get(reverse("agents:detail", args=[agent.slug])).content.decode()
    link = reverse("incidents:of-switch", args=[switch_id])
    assert f'href="{link}">See the incident' in banner
    response = _client(owner).get(link)
    assert (response.status_code, response["Location"]) == (
        302,
        reverse("incidents:detail", args=[incident.pk]),
    )
    response = _client(outsider).get(link)
    assert (response.status_code, response["Location"]) == (302, reverse("incidents:list"))


def test_a_long_title_is_cut_with_an_ellipsis(agent: Agent) -> None:
    summary = "A reason that goes on and on " * 10
    incident, _ = incident_open(
        actor=SYSTEM, kind=TriggerKind.MANUAL, target=("x", "1"), summary=summary, agent=agent
    )
    assert len(incident.title) == 200 and incident.title.endswith("…")


def test_a_team_switch_and_the_global_one_open_incidents_of_their_scope(
    agent: Agent, admin_user: Any
) -> None:
    admin = Actor.for_user(admin_user)
    killswitch_engage(actor=admin, target=Target(scope="team", team=agent.team), reason="team")
    killswitch_engage(actor=admin, target=Target(scope="global"), reason="everything")
    scopes = sorted(Incident.objects.values_list("scope", "team_id"))
    assert scopes == [("global", None), ("team", agent.team_id)]


def test_only_a_critical_alert_opens_one(agent: Agent) -> None:
    alert_raise(finding=_finding(agent, Severity.WARNING), now=timezone.now())
    assert not Incident.objects.exists()
    alert, _ = alert_raise(finding=_finding(agent, Severity.CRITICAL), now=timezone.now())
    incident = Incident.objects.get()
    assert incident.triggers.get().target_id == str(alert.pk)
    assert incident.title == "Critical alert: critical volume"


def test_a_warning_raised_to_critical_opens_one(agent: Agent) -> None:
    alert_raise(finding=_finding(agent, Severity.WARNING), now=timezone.now())
    alert_raise(finding=_finding(agent, Severity.CRITICAL), now=timezone.now())
    assert Incident.objects.get().triggers.get().kind == TriggerKind.ALERT


def test_a_failed_undo_opens_one(agent: Agent, owner: Any) -> None:
    grant_reversible_refunds(agent, {"charge": "params.charges[0]", "amount": "params.amount"})
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    action = decide(token, refund(40, before={"refunded": 0}))
    action_report_result(
        token=token, action_id=action.pk, data=ResultInput("succeeded", after={"refunded": 40})
    )
    compensation = action_undo(actor=Actor.for_user(owner), action=action)
    report = Report("failed", found={"refunded": 40}, detail="the payment API answered 502")
    compensation_report(token=token, action_id=compensation.pk, report=report)
    incident = Incident.objects.get()
    assert incident.triggers.get().kind == TriggerKind.COMPENSATION
    assert "the payment API answered 502" in incident.title


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_opens_handles_and_exports_one_in_the_browser(
    agent: Agent, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = _client(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("incidents:open"), {"agent": agent.slug, "title": "Refunds look odd"}
        )
    incident = Incident.objects.get()
    assert response.status_code == 302 and response.url == f"/incidents/{incident.pk}/"
    page = client.get(response.url).content.decode()
    assert "INC-" in page and "Refunds look odd" in page and "Blast radius" in page

    client.post(
        reverse("incidents:update", args=[incident.pk]),
        {"status": IncidentStatus.INVESTIGATING, "owner": owner.pk},
    )
    client.post(reverse("incidents:note", args=[incident.pk]), {"body": "Looking at v4."})
    incident.refresh_from_db()
    assert (incident.status, incident.owner) == ("investigating", owner)
    assert incident.notes.get().body == "Looking at v4."

    exported = json.loads(
        client.get(reverse("incidents:export", args=[incident.pk, "json"])).content
    )
    assert (
        exported["status"] == "investigating" and exported["notes"][0]["body"] == "Looking at v4."
    )
    assert exported["report"]["blast_radius"]["actions"] == 0
    markdown = client.get(reverse("incidents:export", args=[incident.pk, "md"])).content.decode()
    assert markdown.startswith(f"# INC-{incident.pk}: Refunds look odd")
    assert client.get(f"/incidents/{incident.pk}/export.txt").status_code == 404


def test_an_empty_note_and_an_unknown_status_change_nothing(agent: Agent, owner: Any) -> None:
    client = _client(owner)
    client.post(reverse("incidents:open"), {"agent": agent.slug})
    incident = Incident.objects.get()
    client.post(reverse("incidents:note", args=[incident.pk]), {"body": "   "})
    client.post(reverse("incidents:update", args=[incident.pk]), {"status": "done"})
    incident.refresh_from_db()
    assert incident.status == "open" and not incident.notes.exists()


def test_others_see_nothing_and_viewers_cannot_handle(
    agent: Agent, owner: Any, outsider: Any, auditor: Any
) -> None:
    _client(owner).post(reverse("incidents:open"), {"agent": agent.slug})
    incident = Incident.objects.get()
    outside = _client(outsider)
    assert outside.get(reverse("incidents:detail", args=[incident.pk])).status_code == 404
    assert "INC-" not in outside.get(reverse("incidents:list")).content.decode()
    assert outside.post(reverse("incidents:open"), {"agent": agent.slug}).status_code == 404
    agent_access_grant(actor=SYSTEM, agent=agent, user=auditor, level="viewer")
    viewer = _client(auditor)
    assert viewer.get(reverse("incidents:detail", args=[incident.pk])).status_code == 200
    assert (
        viewer.post(reverse("incidents:note", args=[incident.pk]), {"body": "x"}).status_code == 403
    )
    assert viewer.post(reverse("incidents:open"), {"agent": agent.slug}).status_code == 403


def test_the_api_opens_one_and_reads_its_report(
    agent: Agent, owner: Any, outsider: Any, django_capture_on_commit_callbacks: Any
) -> None:
    raw = personal_token_create(user=owner, name="rca")[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with django_capture_on_commit_callbacks(execute=True):
        opened = api.post(
            "/api/v1/incidents",
            {"agent": agent.slug, "title": "from the API"},
            content_type="application/json",
        )
    assert opened.status_code == 201, opened.content
    incident_id = opened.json()["id"]
    body = api.get(f"/api/v1/incidents/{incident_id}").json()
    assert body["title"] == "from the API" and body["analysis"]["state"] == "done"
    assert set(body["report"]) >= {"break", "causes", "blast_radius", "timeline", "series"}
    assert [i["id"] for i in api.get("/api/v1/incidents").json()] == [incident_id]
    assert api.post(f"/api/v1/incidents/{incident_id}/analyse").status_code == 202

    other = Client(HTTP_AUTHORIZATION=f"Bearer {personal_token_create(user=outsider, name='x')[1]}")
    assert other.get(f"/api/v1/incidents/{incident_id}").status_code == 404
    missing = other.post(
        "/api/v1/incidents", {"agent": agent.slug}, content_type="application/json"
    )
    assert missing.status_code == 404
    assert api.get("/api/v1/incidents/0").status_code == 422


def test_the_open_button_is_shown_to_those_who_may_and_bad_input_goes_nowhere_else(
    agent: Agent, owner: Any, auditor: Any
) -> None:
    page = _client(owner).get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert "Open an incident" in page
    agent_access_grant(actor=SYSTEM, agent=agent, user=auditor, level="viewer")
    viewer_page = _client(auditor).get(reverse("agents:detail", args=[agent.slug]))
    assert "Open an incident" not in viewer_page.content.decode()
    response = _client(owner).post(
        reverse("incidents:open"), {"agent": "not a slug!", "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response.url == reverse("incidents:list")
    assert not Incident.objects.exists()


def test_with_an_incident_still_open_the_button_links_it_and_says_another(
    agent: Agent, owner: Any
) -> None:
    client = _client(owner)
    client.post(reverse("incidents:open"), {"agent": agent.slug})
    incident = Incident.objects.get()
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert f"INC-{incident.pk} for Refund bot is open still" in page
    assert "Open another incident" in page
    Incident.objects.update(status="resolved")
    page = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert "Open an incident" in page and "Open another incident" not in page


def test_once_the_kill_switch_is_released_the_blast_radius_ends_at_the_release(
    agent: Agent, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The agent is stopped, then released after a fix, and the incident is still open:
    analysed again, its blast radius (and the rewind it links) ended at now, counting
    the agent's good work after the release as damage to undo. It ends at the release;
    if anything joins the incident after it, the window runs to now again."""
    from oversight.incidents.services import incident_analyse

    grant_refunds(agent)
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    target, alice = Target(scope="agent", agent=agent), Actor.for_user(owner)
    before = [decide(token, refund(10 + n, charges=(f"ch_b{n}",))) for n in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        killswitch_engage(actor=alice, target=target, reason="refunds gone wild")
    halted = decide(token, refund(20, charges=("ch_h",)))
    killswitch_release(actor=alice, target=target, reason="fixed")
    released = AuditEvent.objects.get(verb="killswitch.released").created_at
    after = [decide(token, refund(30 + n, charges=(f"ch_a{n}",))) for n in range(4)]
    assert {a.status for a in before + after} == {"allowed"} and halted.status == "halted"
    incident = Incident.objects.get()

    blast = incident_analyse(incident_id=incident.pk).report["blast_radius"]  # type: ignore[union-attr]
    assert blast["ends_at_release"] is True
    assert blast["until"] == released.isoformat()
    assert (blast["actions"], blast["took_effect"]) == (4, 3)  # three refunds, one halted
    report = Incident.objects.get().report
    rewind = parse_qs(urlsplit(report["rewind"][0]["url"]).query)
    assert rewind["until"] == [released.isoformat()]
    page = _client(owner).get(f"/incidents/{incident.pk}/").content.decode()
    assert "up to the release of the kill switch that stopped the agents" in page
    markdown = _client(owner).get(f"/incidents/{incident.pk}/export.md").content.decode()
    assert "It ends at the release of the kill switch that stopped the agents." in markdown

    # A fix made after the incident opened is no cause of it, and moves nothing here.
    from oversight.policy.models import Grant
    from oversight.policy.services import policy_object_create

    grant = Grant(agent=agent, action="payments.dispute", resource="stripe:*")
    policy_object_create(actor=alice, obj=grant)
    report = incident_analyse(incident_id=incident.pk).report  # type: ignore[union-attr]
    assert all(c["at"] <= incident.opened_at.isoformat() for c in report["causes"])
    assert not any("after the incident opened" in " ".join(c["why"]) for c in report["causes"])
    assert report["blast_radius"]["until"] == released.isoformat()
    assert report["blast_radius"]["took_effect"] == 3

    with django_capture_on_commit_callbacks(execute=True):
        killswitch_engage(actor=alice, target=target, reason="again")
    blast = incident_analyse(incident_id=incident.pk).report["blast_radius"]  # type: ignore[union-attr]
    assert blast["ends_at_release"] is False
    assert blast["until"] > released.isoformat() and blast["took_effect"] == 7
