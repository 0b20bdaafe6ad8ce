from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from oversight.agents import services
from oversight.agents.constants import AgentStatus
from oversight.agents.models import Agent, AgentGroupObjectPermission, AgentUserObjectPermission
from oversight.audit.actors import Actor


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """Saves go through the registry services, so admin edits are audited like any other."""

    list_display = ("name", "slug", "team", "owner", "status", "risk_tier", "next_review_due")
    list_filter = ("status", "risk_tier", "team")
    search_fields = ("name", "slug", "purpose")
    readonly_fields = (
        "next_review_due",
        "last_reviewed_at",
        "created_at",
        "updated_at",
        "stable_release",  # releases/services.py promotes; rollback is on the releases page
        "stable_version",
        "working_release",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*self.readonly_fields, "slug") if obj else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A retired agent is read-only everywhere (agent_update refuses it): shown, not saved.
        if obj is not None and obj.status == AgentStatus.RETIRED:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        actor = Actor.for_user(request.user)
        if change:
            changes = {
                field: form.cleaned_data[field]
                for field in services.EDITABLE_FIELDS
                if field in form.cleaned_data
            }
            saved = services.agent_update(actor=actor, agent=obj, **changes)
        else:
            fields = (
                "name",
                "slug",
                "purpose",
                "owner",
                "team",
                "environments",
                "risk_tier",
                "review_interval_days",
            )
            saved = services.agent_create(
                actor=actor, **{f: form.cleaned_data[f] for f in fields if f in form.cleaned_data}
            )
        obj.pk = saved.pk


@admin.register(AgentUserObjectPermission)
class AgentUserObjectPermissionAdmin(admin.ModelAdmin):
    list_display = ("content_object", "user", "permission")
    list_select_related = ("content_object", "user", "permission")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # granted through services, which audit the grant

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AgentGroupObjectPermission)
class AgentGroupObjectPermissionAdmin(AgentUserObjectPermissionAdmin):
    list_display = ("content_object", "group", "permission")
    list_select_related = ("content_object", "group", "permission")
