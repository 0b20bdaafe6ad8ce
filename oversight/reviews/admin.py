from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from oversight.reviews.models import Review


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    """Read-only: reviews are history, written by the review page's services."""

    list_display = ("agent", "outcome", "reviewed_by", "completed_at")
    list_filter = ("outcome",)
    search_fields = ("agent__name", "agent__slug", "notes")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
