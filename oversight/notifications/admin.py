from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from oversight.audit.actors import Actor
from oversight.notifications import services
from oversight.notifications.models import Notification, TeamChannels, webhook_host


@admin.register(TeamChannels)
class TeamChannelsAdmin(admin.ModelAdmin):
    """Saves go through the service, so admin edits are audited; the secret is not shown
    here (it is on the team's notifications page, where it can be regenerated)."""

    list_display = ("team", "email_enabled", "webhook", "updated_at")
    list_select_related = ("team",)
    fields = ("team", "email_enabled", "webhook_url")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="Webhook host")
    def webhook(self, obj: TeamChannels) -> str:
        return webhook_host(obj.webhook_url)  # the full URL may carry a token

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("team",) if obj else ()

    def save_model(self, request: HttpRequest, obj: TeamChannels, form: Any, change: bool) -> None:
        saved = services.team_channels_update(
            actor=Actor.for_user(request.user),
            team=obj.team,
            email_enabled=obj.email_enabled,
            webhook_url=obj.webhook_url,
        )
        obj.pk = saved.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # turn channels off instead: that is audited


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Read-only: the delivery record is written by the senders."""

    list_display = ("created_at", "kind", "channel", "recipient", "team", "state", "attempts")
    list_filter = ("state", "channel", "kind")
    list_select_related = ("team",)
    search_fields = ("recipient", "dedupe_key")
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
