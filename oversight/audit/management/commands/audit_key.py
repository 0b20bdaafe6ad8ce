from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from oversight.audit import signing


class Command(BaseCommand):
    help = (
        "Print a new Ed25519 private key (PEM) for AUDIT_SIGNING_KEY or a key file, or with "
        "--public this deployment's public key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--public", action="store_true", help="print the public key")

    def handle(self, *args: Any, public: bool = False, **options: Any) -> None:
        self.stdout.write(signing.public_key_pem() if public else signing.new_key_pem(), ending="")
