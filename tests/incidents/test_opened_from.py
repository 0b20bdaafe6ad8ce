"""Opening one by hand from an action or an alert: it must be the agent's, and one the
person may view; anything else is refused with a clear error and opens nothing (it used
to open one without it, the id silently dropped)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.accounts.services import personal_token_create
from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.gateway.models import Action
from oversight.incidents.models import Incident
from oversight.monitoring.constants import AlertKind, Severity
from oversight.monitoring.models import Alert
from oversight.monitoring.services import Finding, alert_raise
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, refund

pytestmark = pytest.mark.django_db


def _alert(agent: Agent) -> Alert:
    finding = Finding(
        agent_id=agent.pk,
        kind=AlertKind.VOLUME,
        severity=Severity.WARNING,
        dedupe_key="volume",
        title="volume",
        numbers={"actions_in_window": 900},
    )
    return alert_raise(finding=finding, now=timezone.now())[0]


def _action(agent: Agent) -> Action:
    token = token_create(actor=SYSTEM, agent=agent, environment=agent.environments[0])[0]
    return decide(token, refund())


def _api(user: Any) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {personal_token_create(user=user, name='t')[1]}")


def _open(api: Client, **body: Any) -> Any:
    return api.post("/api/v1/incidents", body, content_type="application/json")


def _fields(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 422, response.content
    return response.json()["error"]["fields"]


def test_the_api_refuses_an_alert_of_another_agent_and_opens_nothing(
    agent: Agent, other_agent: Agent, admin_user: Any
) -> None:
    theirs = _alert(other_agent)
    response = _open(_api(admin_user), agent=agent.slug, alert_id=theirs.pk)
    assert _fields(response) == {"alert_id": [f"refund-bot has no alert {theirs.pk}."]}
    assert not Incident.objects.exists()


def test_the_api_refuses_an_action_of_another_agent_and_opens_nothing(
    agent: Agent, other_agent: Agent, admin_user: Any
) -> None:
    theirs = _action(other_agent)
    response = _open(_api(admin_user), agent=agent.slug, action_id=str(theirs.pk))
    assert _fields(response) == {"action_id": [f"refund-bot has no action {theirs.pk}."]}
    assert not Incident.objects.exists()


def test_an_unknown_or_unviewable_alert_or_action_reads_alike_and_opens_nothing(
    agent: Agent, other_agent: Agent, owner: Any
) -> None:
    api = _api(owner)  # refund-bot's owner; she may not view email-campaigner
    alert, action, unknown = _alert(other_agent), _action(other_agent), uuid.uuid4()
    unviewable_alert = _open(api, agent=agent.slug, alert_id=alert.pk)
    assert _fields(unviewable_alert) == {"alert_id": [f"refund-bot has no alert {alert.pk}."]}
    unviewable_action = _open(api, agent=agent.slug, action_id=str(action.pk))
    assert _fields(unviewable_action) == {"action_id": [f"refund-bot has no action {action.pk}."]}
    missing_alert = _open(api, agent=agent.slug, alert_id=987654)
    assert _fields(missing_alert) == {"alert_id": ["refund-bot has no alert 987654."]}
    missing_action = _open(api, agent=agent.slug, action_id=str(unknown))
    assert _fields(missing_action) == {"action_id": [f"refund-bot has no action {unknown}."]}
    both = _open(api, agent=agent.slug, alert_id=_alert(agent).pk, action_id=str(_action(agent).pk))
    assert _fields(both) == {"body": ["Open it from an action or from an alert, not both."]}
    assert not Incident.objects.exists()


def test_the_agents_own_alert_and_action_are_what_it_opens_from(agent: Agent, owner: Any) -> None:
    api = _api(owner)
    alert, action = _alert(agent), _action(agent)
    from_alert = _open(api, agent=agent.slug, alert_id=alert.pk)
    assert from_alert.status_code == 201, from_alert.content
    assert from_alert.json()["triggers"][0]["target"] == f"monitoring.alert:{alert.pk}"
    from_action = _open(api, agent=agent.slug, action_id=str(action.pk))
    assert from_action.status_code == 201, from_action.content
    assert from_action.json()["triggers"][0]["target"] == f"gateway.action:{action.pk}"


def test_the_browser_form_refuses_another_agents_alert_and_goes_back(
    agent: Agent, other_agent: Agent, admin_user: Any
) -> None:
    client = Client()
    client.force_login(admin_user)
    back = reverse("agents:detail", args=[agent.slug])
    theirs = _alert(other_agent)
    response = client.post(
        reverse("incidents:open"), {"agent": agent.slug, "alert": theirs.pk, "next": back}
    )
    assert response.status_code == 302 and response.url == back
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == [f"refund-bot has no alert {theirs.pk}."]
    assert not Incident.objects.exists()
