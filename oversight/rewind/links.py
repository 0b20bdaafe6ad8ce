"""The one way to link to a rewind plan of a window (incidents, alerts, the kill switch)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.urls import reverse


def rewind_plan_url(slug: str, *, since: dt.datetime, until: dt.datetime | None = None) -> str:
    """The plan page of agent ``slug`` over a window fixed in time (ISO times, encoded: a
    "+00:00" written as it is arrives as a space); without ``until``, up to now."""
    window = {"since": since.isoformat()}
    if until is not None:
        window["until"] = until.isoformat()
    return f"{reverse('rewind:plan', args=[slug])}?{urlencode(window)}"
