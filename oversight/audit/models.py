"""The append-only, hash-chained audit log."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models


class AuditLogImmutableError(Exception):
    """Raised on any attempt to change or remove an audit event through the ORM."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogImmutableError("Audit events cannot be updated.")

    def delete(self) -> NoReturn:
        raise AuditLogImmutableError("Audit events cannot be deleted.")


class ActorType(models.TextChoices):
    USER = "user", "User"
    AGENT = "agent", "Agent"
    SYSTEM = "system", "System"


class AuditEvent(models.Model):
    """One recorded change: who did what to which object, with state before and after.

    ``hash`` is SHA-256 over the canonical JSON of the row, which includes
    ``prev_hash``; editing, deleting or reordering any row breaks the chain
    from that row on (``manage.py audit_verify``). On PostgreSQL a trigger
    also refuses UPDATE, DELETE and TRUNCATE.
    """

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    # Ids without foreign keys: the log must outlive whatever it talks about,
    # and a cascade must never try to rewrite it.
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_agent_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200)
    verb = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=200)
    agent_id = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["agent_id", "-seq"], name="audit_agent_seq"),
            models.Index(fields=["verb", "-seq"], name="audit_verb_seq"),
            models.Index(fields=["actor_label", "-seq"], name="audit_actor_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.verb} {self.target_label} by {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogImmutableError("Audit events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogImmutableError("Audit events cannot be deleted.")
