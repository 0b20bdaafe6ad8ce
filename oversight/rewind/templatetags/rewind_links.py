"""``{% rewind_plan_url slug since=... until=... %}``: rewind.links for templates."""

from __future__ import annotations

import datetime as dt

from django import template

from oversight.rewind.links import rewind_plan_url as _url

register = template.Library()


@register.simple_tag
def rewind_plan_url(slug: str, since: dt.datetime, until: dt.datetime | None = None) -> str:
    return _url(slug, since=since, until=until)
