"""Write the current policy as a manifest (the format policy_apply reads)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from oversight.policy.manifest.export import manifest_export


class Command(BaseCommand):
    help = "Print teams, agents, grants, rules and limits as a YAML manifest."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", "-o", help="write to this file instead of stdout")

    def handle(self, *args: Any, output: str | None = None, **options: Any) -> None:
        text = manifest_export()
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
        else:
            self.stdout.write(text, ending="")
