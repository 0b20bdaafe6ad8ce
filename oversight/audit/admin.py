from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from oversight.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the log is written by services and never edited."""

    list_display = ("seq", "created_at", "actor_label", "verb", "target_label", "request_id")
    list_filter = ("verb", "actor_type")
    search_fields = ("actor_label", "target_label", "request_id")
    ordering = ("-seq",)
    show_full_result_count = False  # counting millions of rows on every page is slow

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
