from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from oversight.audit.verification import audit_chain_verify


class Command(BaseCommand):
    help = "Walk the audit hash chain. Exit 0 when intact; otherwise name the first bad seq."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, found = audit_chain_verify()
        if found:
            raise CommandError(
                f"Audit chain broken at seq {found.seq}: {found.reason} ({checked} rows read)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} events verified."))
