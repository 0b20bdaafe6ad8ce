"""The append-only, hash-chained audit log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

from django.db import models
from django.db.models.functions import Cast

from oversight.audit import verifier
from oversight.audit.fields import CanonicalJSONField
from oversight.audit.verbs import ACTION_VERBS


class AuditLogImmutableError(Exception):
    """Raised on any attempt to change or remove an audit event through the ORM."""


# with_stored_texts()'s annotations, by field.
STORED_TEXT_ANNOTATIONS = {"before": "stored_before", "after": "stored_after"}
# What as_stored() reads besides them: the other hashed fields, and the hash.
_STORED_ROW_FIELDS = tuple(
    name for name in (*verifier.HASHED_FIELDS, "hash") if name not in STORED_TEXT_ANNOTATIONS
)


class AuditEventQuerySet(models.QuerySet):
    def with_stored_texts(self) -> AuditEventQuerySet:
        """With ``before`` and ``after`` also as the text they are stored in
        (``stored_before``, ``stored_after``), which their hash covers: the canonical
        text of the value, unless the event was appended by hand. What reads events to
        check their hashes reads these (``as_stored``, ``stored_texts_popped``,
        ``verifier_row_of``)."""
        return self.annotate(
            **{
                annotation: Cast(name, models.TextField())
                for name, annotation in STORED_TEXT_ANNOTATIONS.items()
            }
        )

    def as_stored(self) -> models.QuerySet[AuditEvent, dict[str, Any]]:
        """Rows of the hashed fields and the hash, with ``before`` and ``after`` only as
        the texts they are stored in, unparsed: what a check of the hashes needs
        (``stored_row_checked``)."""
        fields = (*_STORED_ROW_FIELDS, *STORED_TEXT_ANNOTATIONS.values())
        return self.with_stored_texts().values(*fields)

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
    # The canonical text the hash covers, kept as written (fields.py).
    before = CanonicalJSONField(null=True, blank=True)
    after = CanonicalJSONField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["agent_id", "-seq"], name="audit_agent_seq"),
            models.Index(fields=["verb", "-seq"], name="audit_verb_seq"),
            models.Index(fields=["actor_label", "-seq"], name="audit_actor_seq"),
            # An object's story (an action's page): its few events among millions.
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            # An agent's changes without its traffic (its History's default view): only
            # the few rows that are not actions, so decisions pay nothing for it.
            models.Index(
                fields=["agent_id", "-seq"],
                condition=~models.Q(verb__in=ACTION_VERBS),
                name="audit_agent_change_seq",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.verb} {self.target_label} by {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogImmutableError("Audit events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogImmutableError("Audit events cannot be deleted.")


class MerkleNode(models.Model):
    """A stored node of the Merkle tree over all events (verifier.py has the rules): the
    hash of the perfect subtree of ``2 ** level`` leaves starting at leaf
    ``index * 2 ** level``. Only levels from ``merkle.STORED_LEVEL`` up are stored;
    anything below is computed from at most that many events' hashes. Written when a
    checkpoint is, never changed."""

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "index"], name="merkle_node_unique")
        ]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class AuditCheckpoint(models.Model):
    """A signed statement of the log's state, kept here for the audit page and for the
    next checkpoint's ``previous``; what proves anything is the copy in the sinks.
    ``document`` is the exact JSON the sinks receive."""

    number = models.PositiveIntegerField(unique=True)
    tree_size = models.BigIntegerField()
    head = models.CharField(max_length=64)
    root = models.CharField(max_length=64)
    time = models.CharField(max_length=32)
    previous = models.CharField(max_length=64)
    statement_hash = models.CharField(max_length=64, unique=True)
    signature = models.CharField(max_length=100)
    key_id = models.CharField(max_length=16)
    document = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"checkpoint #{self.number} ({self.tree_size} events)"


class SinkState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class CheckpointDelivery(models.Model):
    """One checkpoint to one sink (``dir:``, ``webhook:``, ``email:``), retried until
    delivered or out of attempts; each attempt is counted and its error kept."""

    checkpoint = models.ForeignKey(
        AuditCheckpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    sink = models.CharField(max_length=500)
    state = models.CharField(max_length=12, choices=SinkState.choices, default=SinkState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["checkpoint", "sink"], name="checkpoint_sink_unique")
        ]

    def __str__(self) -> str:
        return f"{self.checkpoint} to {self.sink}: {self.state}"


class VerificationRun(models.Model):
    """One walk of the whole log (from the audit page, the nightly job or the command),
    with its progress while it runs and its result after."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    started_by = models.CharField(max_length=200)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.RUNNING)
    total = models.BigIntegerField(default=0)
    checked = models.BigIntegerField(default=0)
    checkpoints = models.PositiveIntegerField(default=0)
    exit_code = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    first_bad_seq = models.BigIntegerField(null=True, blank=True)
    checkpoint_number = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"verification {self.pk}: {self.state}"


def stored_texts_popped(row: dict[str, Any]) -> dict[str, str | None]:
    """The texts a ``values()`` row of ``with_stored_texts()`` holds, taken out of it."""
    return {name: row.pop(annotation) for name, annotation in STORED_TEXT_ANNOTATIONS.items()}


def verifier_row_of(event: AuditEvent, fields: Iterable[str]) -> dict[str, Any]:
    """``fields`` of an event of ``with_stored_texts()``, as the verifier reads them."""
    row = {name: getattr(event, name) for name in fields}
    texts = {name: getattr(event, a) for name, a in STORED_TEXT_ANNOTATIONS.items()}
    return verifier.with_stored_texts(row, texts)


def stored_row_checked(row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A row of ``as_stored()`` without its texts, and whether it hashes to its hash
    (verifier.stored_content_matches)."""
    return row, verifier.stored_content_matches(row, stored_texts_popped(row))
