"""Choices and fixed numbers for reviews."""

from __future__ import annotations

from django.db import models


class ReviewOutcome(models.TextChoices):
    RECERTIFIED = "recertified", "Re-certified"
    REDUCED = "reduced", "Access reduced, then re-certified"
    RETIRED = "retired", "Retired"


# A grant no action used in this many days is marked unused on the review page.
USAGE_WINDOWS_DAYS = (30, 90)
UNUSED_AFTER_DAYS = 90
# The review page's window for the denial rate.
DENIAL_RATE_DAYS = 30
