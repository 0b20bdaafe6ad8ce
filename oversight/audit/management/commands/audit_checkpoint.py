from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from oversight.audit.checkpoints import CheckpointRefused, checkpoint_write


class Command(BaseCommand):
    help = (
        "Sign a checkpoint of the audit log now and send it to AUDIT_CHECKPOINT_SINKS "
        "(docs/audit-trust.md), as many as a backlog needs. Does nothing when no event is new."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        written = 0
        while True:  # a backlog larger than AUDIT_CHECKPOINT_MAX_EVENTS takes several
            try:
                checkpoint = checkpoint_write()
            except CheckpointRefused as exc:
                raise CommandError(f"Checkpoint refused: {exc}", returncode=3) from None
            if checkpoint is None:
                break
            written += 1
            sinks = ", ".join(d.sink for d in checkpoint.deliveries.all())
            self.stdout.write(
                self.style.SUCCESS(
                    f"Checkpoint #{checkpoint.number}: {checkpoint.tree_size} events, root "
                    f"{checkpoint.root[:16]}..., signed by key {checkpoint.key_id}; "
                    f"queued to {sinks or 'no sink'}."
                )
            )
        if not written:
            self.stdout.write("No new events since the last checkpoint; nothing written.")
