from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from oversight.audit import signing, verifier
from oversight.audit.verification import audit_log_verify


class Command(BaseCommand):
    help = (
        "Verify the audit log: the hash chain, every action's decision event and, with "
        "--checkpoints, the signed checkpoints kept outside the database. Exit 0 when "
        "verified; 1 chain broken, 3 contradicts a checkpoint, 4 a checkpoint is invalid, "
        "5 actions and decision events disagree, 6 the checkpoints cannot be read "
        "(docs/audit-trust.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoints",
            metavar="DIR_OR_URL",
            help="a directory of checkpoint files, a JSON Lines file, or a URL serving one",
        )
        parser.add_argument(
            "--public-key",
            type=Path,
            help="the PEM public key the checkpoints are signed with (default: this "
            "deployment's key)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoints: list[verifier.Checkpoint] = []
        public_key = None
        if options["checkpoints"]:
            try:
                checkpoints = verifier.read_checkpoints(options["checkpoints"])
                pem = (
                    options["public_key"].read_bytes()
                    if options["public_key"]
                    else signing.public_key_pem().encode()
                )
                public_key = verifier.public_key_from_pem(pem)
            except (OSError, ValueError, KeyError) as exc:
                raise CommandError(
                    f"Cannot read the checkpoints: {exc}", returncode=verifier.EXIT_UNREADABLE
                ) from None
            if not checkpoints:
                raise CommandError(
                    f"No checkpoints found in {options['checkpoints']}.",
                    returncode=verifier.EXIT_UNREADABLE,
                )
        outcome = audit_log_verify(checkpoints=checkpoints, public_key=public_key)
        finding = outcome.finding
        if finding is None:
            against = f" against {len(checkpoints)} checkpoints" if checkpoints else ""
            self.stdout.write(
                self.style.SUCCESS(
                    f"Audit chain intact: {outcome.checked} events verified{against}; every "
                    "action has its decision event."
                )
            )
            return
        where = f" at seq {finding.seq}" if finding.seq is not None else ""
        if finding.checkpoint is not None:
            where += f" (checkpoint #{finding.checkpoint})"
        raise CommandError(
            f"Audit chain broken{where}: {finding.message} ({outcome.checked} events read).",
            returncode=finding.code,
        )
