"""Personal API tokens: a person's credential for the approvals API (a CLI, a chat bot).

A token looks like ``ovp_<43 url-safe characters>`` (256 random bits) and is stored only
as its SHA-256, like an agent's (agents/tokens.py). The two kinds are looked up in
different tables, so an agent's token never authenticates a person and a person's never
authenticates an agent.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.utils import timezone

from oversight.accounts.models import PersonalToken
from oversight.agents.tokens import token_hash

PREFIX = "ovp_"
VISIBLE = len(PREFIX) + 6  # the prefix shown to tell tokens apart
_TOUCH_EVERY = dt.timedelta(seconds=60)  # last_used_at is written at most this often


def generate() -> str:
    return f"{PREFIX}{secrets.token_urlsafe(32)}"


def visible_prefix(raw: str) -> str:
    return raw[:VISIBLE]


def person_authenticate(raw: str) -> Any | None:
    """The active person behind an active personal token, or None (HTTP 401)."""
    if not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    token = (
        PersonalToken.objects.select_related("user")
        .filter(token_hash=token_hash(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        PersonalToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
