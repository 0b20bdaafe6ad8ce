"""Admin: channels are saved through the audited service; notifications are read-only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.audit.models import AuditEvent
from oversight.notifications.models import Notification, TeamChannels

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


def test_adding_channels_in_the_admin_is_audited(client: Client, staff: Any, team: Any) -> None:
    client.force_login(staff)
    response = client.post(
        reverse("admin:notifications_teamchannels_add"),
        {"team": team.pk, "email_enabled": "on", "webhook_url": "https://hooks.example.com/x"},
    )
    assert response.status_code == 302
    assert TeamChannels.objects.get(team=team).email_enabled
    assert AuditEvent.objects.get(verb="team_channels.updated").actor_label == "root"


def test_the_admin_refuses_plain_http_to_a_public_host(
    client: Client, staff: Any, team: Any
) -> None:
    client.force_login(staff)
    response = client.post(
        reverse("admin:notifications_teamchannels_add"),
        {"team": team.pk, "webhook_url": "http://hooks.example.com/x"},
    )
    assert response.status_code == 200
    assert not TeamChannels.objects.exists()


def test_notifications_can_be_read_but_not_changed(client: Client, staff: Any, team: Any) -> None:
    notification = Notification.objects.create(
        kind="test", channel="webhook", recipient="hooks.example.com", team=team, dedupe_key="k"
    )
    client.force_login(staff)
    assert client.get(reverse("admin:notifications_notification_changelist")).status_code == 200
    change = reverse("admin:notifications_notification_change", args=[notification.pk])
    page = client.get(change)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(change, {"state": "sent"}).status_code == 403
    assert client.get(reverse("admin:notifications_notification_add")).status_code == 403
