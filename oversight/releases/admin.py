from django.contrib import admin

from oversight.releases.models import Release


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    """Read-only: releases are immutable; they are made by the services."""

    list_display = ("agent", "version", "digest", "author", "created_at", "notes")
    list_filter = ("agent",)

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
