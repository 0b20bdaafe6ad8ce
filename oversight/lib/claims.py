"""Claiming a row for one attempt at an outside send (notifications, checkpoint sinks).

A conditional update, no transaction held across the network: it claims the row only
while it is pending, under its attempt limit, and not held by another worker; the claim
counts the attempt and lapses after ``seconds`` if the worker dies.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Model, Q
from django.utils import timezone


def claim_attempt(
    model: type[Model], pk: int, *, pending: str, max_attempts: int, seconds: int
) -> bool:
    """True when this caller now holds the row (``state``, ``attempts``, ``claimed_until``)."""
    now = timezone.now()
    return bool(
        model._default_manager.filter(pk=pk, state=pending, attempts__lt=max_attempts)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + dt.timedelta(seconds=seconds), attempts=F("attempts") + 1)
    )
