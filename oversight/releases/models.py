"""Releases: immutable, content-addressed versions of what an agent is and may do."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from oversight.agents.models import Agent


class ImmutableReleaseError(Exception):
    """A saved release was about to change: releases are never edited."""


class Release(models.Model):
    """One version of an agent: its config (instructions, model, model settings, tools)
    and its grants and rules, as canonical JSON (``content``) addressed by its SHA-256
    (``digest``). Limits are not in it: they stay on the agent, team and everyone, shared
    by every release. Never updated; a change is a new release whose parent is the one it
    was made from."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="releases")
    version = models.PositiveIntegerField()
    digest = models.CharField(max_length=64)
    content = models.JSONField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.RESTRICT, related_name="children"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notes = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "version"], name="release_version_unique")
        ]
        indexes = [models.Index(fields=["agent", "digest"])]

    def __str__(self) -> str:
        return f"v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ImmutableReleaseError(f"Release {self.pk} is immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableReleaseError("Releases are never deleted (only with their agent).")
