from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from oversight.killswitch.models import KillSwitch


@admin.register(KillSwitch)
class KillSwitchAdmin(admin.ModelAdmin):
    """Read-only here: presses go through the service (audited), from the command or the UI."""

    list_display = ("scope", "team", "agent", "engaged", "reason", "changed_at")
    list_filter = ("engaged", "scope")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
