"""Apply a policy manifest atomically; print what changed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from oversight.audit.actors import Actor
from oversight.lib.request_id import request_id_scope
from oversight.policy.manifest.apply import manifest_apply
from oversight.policy.manifest.spec import ManifestError, parse_manifest


class Command(BaseCommand):
    stealth_options = ("stdin",)  # call_command(..., stdin=StringIO(...)) in tests
    help = (
        "Make teams, agents, grants, rules and limits match a YAML manifest (see docs/manifest.md)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="the manifest, or - for standard input")
        parser.add_argument("--dry-run", action="store_true", help="show the changes, make none")

    def handle(self, *args: Any, file: str, dry_run: bool, **options: Any) -> None:
        try:
            stdin = options.get("stdin") or sys.stdin
            text = stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        label = "standard input" if file == "-" else file
        try:
            manifest = parse_manifest(text)
            with request_id_scope():
                changes = manifest_apply(
                    manifest=manifest, actor=Actor.system("policy_apply"), dry_run=dry_run
                )
        except ManifestError as exc:
            raise CommandError(f"{label}: {exc}. Nothing was changed.") from None
        for line in changes:
            self.stdout.write(line)
        verb = "would change" if dry_run else "changed"
        summary = (
            f"{len(changes)} {'change' if len(changes) == 1 else 'changes'}"
            if changes
            else "no changes"
        )
        self.stdout.write(
            self.style.SUCCESS(f"{file}: {summary}" + (f" ({verb})" if changes else ""))
        )
