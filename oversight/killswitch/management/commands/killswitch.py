"""Engage or release a kill switch from the command line."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from oversight.audit.actors import Actor
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage, killswitch_release


class Command(BaseCommand):
    help = "Engage or release a kill switch: --scope global | team:NAME | agent:SLUG."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("operation", choices=["engage", "release"])
        parser.add_argument("--scope", required=True, help="global, team:NAME or agent:SLUG")
        parser.add_argument("--reason", required=True)
        parser.add_argument(
            "--by",
            default="",
            metavar="USERNAME",
            help="who is pressing it, recorded as the actor (an active user of Oversight)",
        )

    def handle(
        self, *args: Any, operation: str, scope: str, reason: str, by: str, **options: Any
    ) -> None:
        service = killswitch_engage if operation == "engage" else killswitch_release
        try:
            actor = self._actor(by)
            target = parse_target(scope)
            service(actor=actor, target=target, reason=reason)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        state = "ENGAGED" if operation == "engage" else "released"
        self.stdout.write(self.style.WARNING(f"Kill switch for {target.label} {state}."))

    @staticmethod
    def _actor(username: str) -> Actor:
        """The person named by ``--by``; without it, the command itself (its audit event
        then says only that it was pressed from the command line)."""
        if not username:
            return Actor.system("killswitch-command")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise ValidationError(f"No active user {username!r} (--by).")
        return Actor.for_user(user)
