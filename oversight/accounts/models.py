"""Teams. A team's members are the users of its permission group."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import models


class Team(models.Model):
    """A group of people who own and run agents together.

    Membership is the team's Django group, so guardian permissions granted to
    the group (``view_agent`` on each of the team's agents) reach every member
    without a second list to keep in step.
    """

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def members(self) -> Any:
        return self.group.user_set
