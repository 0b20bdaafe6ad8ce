"""An agent's releases and rollouts from the command line (what the release page does).

    manage.py release SLUG                       the releases, the stable one, any rollout
    manage.py release SLUG start N --stage shadow [--plan 1,10,50,100] [--min-decisions 200]
    manage.py release SLUG approve|advance|pause|resume|roll-back|cancel [--why TEXT]
    manage.py release SLUG rollback N            make release N's content stable at once
    manage.py release SLUG guard                 let the guard look now (what beat does)

``--user NAME`` acts as that person (approval needs a person other than the author);
otherwise the actor is the system's ``release-command``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from oversight.agents.models import Agent
from oversight.audit.actors import Actor
from oversight.core.commands import command_actor
from oversight.releases import rollouts
from oversight.releases.guard import rollout_guard_one
from oversight.releases.models import Release, Stage
from oversight.releases.services import release_rollback

_STEPS = {
    "approve": rollouts.rollout_approve,
    "advance": rollouts.rollout_advance,
    "pause": rollouts.rollout_pause,
    "resume": rollouts.rollout_resume,
    "roll-back": rollouts.rollout_roll_back,
    "cancel": rollouts.rollout_cancel,
}
_WHY = ("advance", "pause", "roll-back", "cancel")


class Command(BaseCommand):
    help = "Show an agent's releases, roll one out in stages, or roll back."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("agent", help="the agent's slug")
        parser.add_argument(
            "operation",
            nargs="?",
            default="status",
            choices=["status", "start", "rollback", "guard", *_STEPS],
        )
        parser.add_argument("version", nargs="?", type=int, help="for start and rollback")
        parser.add_argument(
            "--stage", default=Stage.STAGING, choices=["staging", "shadow", "canary"]
        )
        parser.add_argument("--plan", default="1,10,50,100", help="canary shares in percent")
        parser.add_argument("--min-decisions", type=int, default=200)
        parser.add_argument("--manual", action="store_true", help="advance only by hand")
        parser.add_argument("--why", default="", help="why (pause, roll-back, cancel, advance)")
        parser.add_argument("--user", default="", help="act as this person")

    def handle(self, *args: Any, agent: str, operation: str, **options: Any) -> None:
        found = Agent.objects.select_related("team", "owner").filter(slug=agent).first()
        if found is None:
            raise CommandError(f"No agent {agent!r}.")
        actor = command_actor(options["user"], "release-command")
        try:
            self._run(found, operation, actor, options)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        found.refresh_from_db()
        self._status(found)

    def _release(self, agent: Agent, version: int | None) -> Release:
        if version is None:
            raise CommandError("Name the release's version, e.g. `start 7`.")
        release = Release.objects.filter(agent=agent, version=version).first()
        if release is None:
            raise CommandError(f"{agent.slug} has no release v{version}.")
        return release

    def _run(self, agent: Agent, operation: str, actor: Actor, options: dict[str, Any]) -> None:
        if operation == "status":
            return
        if operation == "start":
            try:
                plan = [int(part) for part in options["plan"].split(",") if part.strip()]
            except ValueError:
                raise CommandError("--plan: whole percentages separated by commas.") from None
            rollouts.rollout_start(
                actor=actor,
                release=self._release(agent, options["version"]),
                stage=options["stage"],
                plan=plan,
                min_decisions=options["min_decisions"],
                auto_advance=not options["manual"],
            )
            return
        if operation == "rollback":
            release_rollback(actor=actor, release=self._release(agent, options["version"]))
            return
        live = rollouts.live_rollout(agent)
        if live is None:
            raise CommandError(f"{agent.slug} has no rollout in progress.")
        if operation == "guard":
            self.stdout.write(f"guard: {rollout_guard_one(live)}")
            return
        arguments: dict[str, Any] = {"actor": actor, "rollout": live}
        if operation == "advance":  # a reason is asked for where the guard has not judged
            arguments["why"] = options["why"] or ""
        elif operation in _WHY:
            arguments["why"] = options["why"] or f"by {actor.label}"
        _STEPS[operation](**arguments)

    def _status(self, agent: Agent) -> None:
        self.stdout.write(f"{agent.slug}: stable v{agent.stable_version or '-'}")
        live = rollouts.live_rollout(agent)
        if live is not None:
            share = f" {live.share_percent:g}%" if live.stage == Stage.CANARY else ""
            self.stdout.write(
                f"rollout of v{live.release.version}: {live.get_state_display().lower()},"
                f" {live.get_stage_display().lower()}{share}, plan {live.plan}"
            )
            for row in live.verdicts:
                self.stdout.write(
                    f"  {'REGRESSION ' if row.get('regressed') else ''}{row['explain']}"
                )
            if live.waits_for_a_person:
                self.stdout.write(f"  {live.waits_for_a_person}")
        for release in Release.objects.filter(agent=agent).order_by("-version")[:10]:
            mark = " (stable)" if release.pk == agent.stable_release_id else ""
            self.stdout.write(
                f"  v{release.version}{mark} {release.created_at:%Y-%m-%d %H:%M} {release.notes}"
            )
