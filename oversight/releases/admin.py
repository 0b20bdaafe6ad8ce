from django.contrib import admin

from oversight.releases.models import Release, Rollout


class _ReadOnly(admin.ModelAdmin):
    """Made and moved by the services (releases/services.py, rollouts.py), never here."""

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Release)
class ReleaseAdmin(_ReadOnly):
    """Read-only: releases are immutable."""

    list_display = ("agent", "version", "digest", "author", "created_at", "notes")
    list_filter = ("agent",)


@admin.register(Rollout)
class RolloutAdmin(_ReadOnly):
    list_display = ("agent", "release", "state", "stage", "created_at", "ended_reason")
    list_filter = ("state", "stage")
