"""The unread count in the nav badge, counted only when a page shows it."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest

from oversight.notifications.selectors import inbox_unread_count


def inbox(request: HttpRequest) -> dict[str, Any]:
    # A callable: templates call it when they use it, so htmx partials and JSON pay
    # nothing, and ``cache`` makes a page that shows it twice count once.
    @cache
    def unread() -> int:
        return inbox_unread_count(user=request.user)

    return {"inbox_unread": unread}
