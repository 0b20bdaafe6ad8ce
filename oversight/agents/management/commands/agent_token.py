"""Create a token for an agent and print only the token on stdout (for scripts)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from oversight.agents.constants import Environment
from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.audit.actors import Actor


class Command(BaseCommand):
    help = "Create an API token for agent SLUG in an environment; prints only the token."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--env",
            choices=Environment.values,
            default=Environment.PRODUCTION,
            help="production (the default: calls that run) or staging (dry runs, recorded and"
            " never run).",
        )
        parser.add_argument("--name", default="", help="A label to tell tokens apart.")

    def handle(self, *args: Any, slug: str, env: str, name: str, **options: Any) -> None:
        agent = Agent.objects.filter(slug=slug).first()
        if agent is None:
            raise CommandError(f"No agent with slug {slug!r}.")
        try:
            _token, raw = token_create(
                actor=Actor.system("agent_token"), agent=agent, environment=env, name=name
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(raw)
