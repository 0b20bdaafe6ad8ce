"""``{% feed_cells action %}``: one row of a live action feed (see oversight/live/rows.py)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from oversight.gateway.models import Action
from oversight.live import rows

register = template.Library()


@register.simple_tag
def feed_cells(action: Action) -> SafeString:
    return rows.feed_cells(action)
