from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from oversight.audit.bundle import BundleError, bundle_build
from oversight.audit.models import AuditEvent
from oversight.audit.selectors import AuditFilters


def _when(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"{value!r} is not a date and time (e.g. 2026-12-01T00:00Z).")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = (
        "Write an evidence bundle (zip) of an agent's events in a time range, with inclusion "
        "proofs, checkpoints, the public key and the verifier; check it anywhere with "
        "`python verify.py bundle FILE`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--agent", default="", help="the agent's slug (default: all)")
        parser.add_argument("--since", help="from this time (ISO 8601, UTC if no offset)")
        parser.add_argument("--until", help="up to this time, excluded")
        parser.add_argument("--output", type=Path, help="file or directory (default: here)")

    def handle(self, *args: Any, **options: Any) -> None:
        filters = AuditFilters(
            agent=options["agent"], since=_when(options["since"]), until=_when(options["until"])
        )
        try:
            bundle = bundle_build(
                events=AuditEvent.objects.all(), filters=filters, site=settings.SITE_URL
            )
        except BundleError as exc:
            raise CommandError(str(exc)) from None
        output = options["output"] or Path.cwd()
        path = output / bundle.name if output.is_dir() else output
        path.write_bytes(bundle.content)
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {path}: {bundle.events} events, proofs in checkpoint "
                f"#{bundle.checkpoint}. Verify with: python verify.py bundle {path.name}"
            )
        )
