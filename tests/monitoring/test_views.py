"""The alert pages: who sees which alerts, who may acknowledge and resolve, CSRF."""

from __future__ import annotations

import datetime as dt
import html
import re
from importlib import import_module
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.monitoring.jobs import monitoring_run
from oversight.monitoring.models import Alert
from oversight.monitoring.services import alert_resolve
from tests.monitoring.helpers import actions_at

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def alert(agent: Any) -> Alert:
    """A critical volume alert on the refund bot (so it is held)."""
    now = timezone.now()
    actions_at(agent, now - dt.timedelta(seconds=5), 320)
    monitoring_run(now=now)
    return Alert.objects.get(agent=agent)


@pytest.fixture
def other_alert(other_agent: Any) -> Alert:
    now = timezone.now()
    actions_at(other_agent, now - dt.timedelta(seconds=5), 200)
    monitoring_run(now=now)
    return Alert.objects.get(agent=other_agent)


def as_user(user: Any, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def test_the_list_shows_only_alerts_of_visible_agents(
    alert: Alert, other_alert: Alert, teammate: Any, admin_user: Any
) -> None:
    body = as_user(teammate).get(reverse("monitoring:list")).content.decode()
    assert alert.title in body and other_alert.title not in body
    assert reverse("monitoring:alert", args=[alert.pk]) in body
    body = as_user(admin_user).get(reverse("monitoring:list")).content.decode()
    assert alert.title in body and other_alert.title in body


def test_the_list_filters_by_agent_and_status(
    alert: Alert, other_alert: Alert, admin_user: Any
) -> None:
    client = as_user(admin_user)
    body = client.get(reverse("monitoring:list"), {"agent": "email-campaigner"}).content.decode()
    assert other_alert.title in body and alert.title not in body
    body = client.get(reverse("monitoring:list"), {"status": "resolved"}).content.decode()
    assert "No alerts match" in body
    partial = client.get(reverse("monitoring:list"), {"status": "open"}, **HTMX)
    # the table alone, which re-reads itself with the same filters when an alert changes
    assert partial.content.decode().startswith(
        '<div id="alert-table" hx-get="/alerts/?status=open"'
    )
    assert client.get(reverse("monitoring:list"), {"status": "bogus"}).status_code == 200


def test_anonymous_people_are_sent_to_log_in(alert: Alert) -> None:
    response = Client().get(reverse("monitoring:alert", args=[alert.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_detail_shows_evidence_with_links_to_the_actions(alert: Alert, owner: Any) -> None:
    body = as_user(owner).get(reverse("monitoring:alert", args=[alert.pk])).content.decode()
    first = alert.evidence["actions"][0]["id"]
    assert reverse("approvals:action", args=[first]) in body
    assert "baseline per window" in body and "320" in body
    assert "Every action of Refund bot is held" in body
    assert "Resolve" in body and "Acknowledge" in body


def test_the_minute_table_marks_the_minutes_the_headline_counts(agent: Any, owner: Any) -> None:
    """The headline ("N actions in 5 minutes") counts the window of its last check; the
    table around it shows more minutes than that, so it marks which ones, and their sum
    is the headline's."""
    from tests.monitoring.helpers import steady

    now = timezone.now().replace(second=30)
    steady(agent, end=now, minutes=12, per_minute=3)
    actions_at(agent, now - dt.timedelta(seconds=5), 320)
    monitoring_run(now=now)
    alert = Alert.objects.get(agent=agent)
    body = as_user(owner).get(reverse("monitoring:alert", args=[alert.pk])).content.decode()
    assert "The headline counts the 5 minutes marked ●" in body
    rows = re.findall(r"<tr( class=\"counted\")?><td data-label=\"Minute \(UTC\)\">.*?</tr>", body)
    assert len(rows) > 5 and [bool(r) for r in rows] == [False] * (len(rows) - 5) + [True] * 5
    counted = re.findall(r'<tr class="counted">.*?data-label="Actions">(\d+)</td>', body)
    assert sum(map(int, counted)) == alert.evidence["actions_in_window"]


def test_rewind_since_it_opened_plans_from_the_alerts_opening(alert: Alert, owner: Any) -> None:
    client = as_user(owner)
    body = client.get(reverse("monitoring:alert", args=[alert.pk])).content.decode()
    link = re.search(r'href="([^"]+)">Rewind since it opened', body)
    assert link is not None
    plan = client.get(html.unescape(link.group(1))).context["plan"]
    assert plan is not None and plan["since"] == alert.opened_at


def test_the_agents_response_says_whether_this_alert_set_it_off(
    alert: Alert, other_alert: Alert, admin_user: Any
) -> None:
    admin = as_user(admin_user)
    critical = admin.get(reverse("monitoring:alert", args=[alert.pk])).content.decode()
    assert "response to critical alerts" in critical and "hold applied" in critical
    assert other_alert.severity == "warning"
    warning = admin.get(reverse("monitoring:alert", args=[other_alert.pk])).content.decode()
    assert "(not applied: this alert is a warning)" in warning and "applied</strong>" not in warning
    # Resolved, the last critical one: the hold it set off is lifted, and it says so.
    alert_resolve(user=admin_user, alert_id=alert.pk, now=timezone.now())
    resolved = admin.get(reverse("monitoring:alert", args=[alert.pk])).content.decode()
    assert "hold applied</strong>, since lifted" in resolved


def test_people_who_cannot_see_the_agent_get_404(alert: Alert, outsider: Any) -> None:
    client = as_user(outsider)
    assert client.get(reverse("monitoring:alert", args=[alert.pk])).status_code == 404
    assert client.post(reverse("monitoring:resolve", args=[alert.pk])).status_code == 404
    assert client.get(reverse("monitoring:alert", args=[999999])).status_code == 404


def test_viewers_may_look_but_not_act(alert: Alert, teammate: Any) -> None:
    client = as_user(teammate)
    body = client.get(reverse("monitoring:alert", args=[alert.pk])).content.decode()
    assert "hx-post" not in body and "owner, its reviewers and admins" in body
    response = client.post(reverse("monitoring:acknowledge", args=[alert.pk]), **HTMX)
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == "open"


def test_the_owner_acknowledges_in_place(alert: Alert, owner: Any) -> None:
    response = as_user(owner).post(reverse("monitoring:acknowledge", args=[alert.pk]), **HTMX)
    assert response.status_code == 200
    assert 'data-alert-status="acknowledged"' in response.content.decode()
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", owner)


def test_a_reviewer_resolves_and_the_hold_is_lifted(alert: Alert, rita: Any, agent: Any) -> None:
    client = as_user(rita)
    response = client.post(reverse("monitoring:resolve", args=[alert.pk]), **HTMX)
    assert response.status_code == 200
    assert 'data-alert-status="resolved"' in response.content.decode()
    agent.refresh_from_db()
    assert not agent.hold_all
    again = client.post(reverse("monitoring:resolve", args=[alert.pk]), **HTMX)
    assert again.status_code == 409 and "resolved already" in again.content.decode()


def test_an_alert_resolved_by_someone_since_deleted_does_not_read_as_monitorings(
    alert: Alert, admin_user: Any, django_user_model: Any
) -> None:
    """Her account deleted, no one is named in resolved_by any more: the page said
    "by monitoring, its condition cleared", which monitoring never did."""
    leaver = django_user_model.objects.create_superuser("leaver", "leaver@example.com", "x")
    alert_resolve(user=leaver, alert_id=alert.pk, now=timezone.now())
    page = as_user(admin_user).get(reverse("monitoring:alert", args=[alert.pk]))
    assert "by leaver" in page.content.decode()
    leaver.delete()
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.resolved_why) == ("resolved", None, "")
    body = as_user(admin_user).get(reverse("monitoring:alert", args=[alert.pk])).content.decode()
    assert "by a person whose account has since been deleted" in body
    assert "by monitoring" not in body


@pytest.mark.django_db(transaction=True)  # SQLite's schema editor opens no transaction in one
def test_the_migration_takes_alerts_resolved_before_it_from_the_audit_log(
    alert: Alert, other_alert: Alert, django_user_model: Any
) -> None:
    """monitoring 0003: an alert resolved by monitoring before it gets monitoring's words
    from its alert.resolved event; one a person resolved (her account deleted) stays
    unnamed, so it does not read as monitoring's."""
    from django.apps import apps
    from django.db import connection

    from oversight.monitoring.services import alert_resolve_cleared

    migration = import_module("oversight.monitoring.migrations.0003_alert_resolved_why")
    leaver = django_user_model.objects.create_superuser("leaver", "leaver@example.com", "x")
    alert_resolve(user=leaver, alert_id=alert.pk, now=timezone.now())
    leaver.delete()
    alert_resolve_cleared(alert_id=other_alert.pk, now=timezone.now(), why="it calmed down")
    Alert.objects.update(resolved_why="")  # as the column was added
    with connection.schema_editor() as editor:
        migration.resolved_why_from_the_log(apps, editor)
    assert dict(Alert.objects.values_list("pk", "resolved_why")) == {
        alert.pk: "",
        other_alert.pk: "it calmed down",
    }


def test_admins_may_act_and_without_htmx_are_redirected(alert: Alert, admin_user: Any) -> None:
    response = as_user(admin_user).post(reverse("monitoring:resolve", args=[alert.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("monitoring:alert", args=[alert.pk])


def test_acting_needs_post_and_csrf(alert: Alert, owner: Any) -> None:
    client = as_user(owner, enforce_csrf_checks=True)
    assert client.get(reverse("monitoring:resolve", args=[alert.pk])).status_code == 405
    assert client.post(reverse("monitoring:resolve", args=[alert.pk])).status_code == 403
    alert.refresh_from_db()
    assert alert.status == "open"


def test_the_nav_links_to_alerts(owner: Any) -> None:
    body = as_user(owner).get(reverse("monitoring:list")).content.decode()
    assert f'href="{reverse("monitoring:list")}" aria-current="page">Alerts' in body
