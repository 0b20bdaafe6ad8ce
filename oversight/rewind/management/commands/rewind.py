"""Rewind an agent's window from the command line (what the rewind page does).

    manage.py rewind --agent SLUG --since 10m [--until T] [--release N] [--session S]
                     [--resource PATTERN] --dry-run | --execute [--user NAME]
    manage.py rewind --status ID | --approve ID | --pause ID | --resume ID | --cancel ID

``--dry-run`` prints the plan; ``--execute`` keeps it and starts it (a large one waits for
a second person's approval: ``--approve ID --user NAME``). The agent's compensator runs
the undos; ``--status`` reports them, per action.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.core.commands import command_actor
from oversight.lib.moments import MomentError, parse_moment
from oversight.rewind import bulk
from oversight.rewind.models import Rewind
from oversight.rewind.plan import CANCEL, Scope, rewind_plan
from oversight.rewind.runner import rewind_step
from oversight.rewind.selectors import rewind_progress, rewind_verdict
from oversight.rewind.words import undo_words

_STEPS = {
    "approve": bulk.rewind_approve,
    "pause": bulk.rewind_pause,
    "resume": bulk.rewind_resume,
    "cancel": bulk.rewind_cancel,
}


class Command(BaseCommand):
    help = "Plan (--dry-run) or run (--execute) the undo of an agent's actions since a moment."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agent", help="the agent's slug")
        parser.add_argument("--since", help="10m, 24h, 7d, or an ISO date or datetime")
        parser.add_argument("--until", default="", help="the window's end (default now)")
        parser.add_argument("--release", type=int, default=None)
        parser.add_argument("--session", default="")
        parser.add_argument("--resource", default="*", help="a resource pattern")
        parser.add_argument("--user", default="", help="act as this person")
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--dry-run", action="store_true")
        what.add_argument("--execute", action="store_true")
        what.add_argument("--status", type=int, metavar="ID")
        for step in _STEPS:
            what.add_argument(f"--{step}", type=int, metavar="ID")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = command_actor(options["user"], "rewind-command")
        try:
            for step, service in _STEPS.items():
                if options[step] is not None:
                    self._report(service(actor=actor, rewind=self._rewind(options[step])))
                    return
            if options["status"] is not None:
                self._report(self._rewind(options["status"]))
                return
            scope = self._scope(options)
            if options["dry_run"]:
                self._plan(rewind_plan(scope=scope, examples=20))
            else:
                rewind = bulk.rewind_create(actor=actor, scope=scope)
                rewind_step(rewind_id=rewind.pk)
                self._report(rewind)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None

    def _rewind(self, pk: int) -> Rewind:
        rewind = Rewind.objects.select_related("agent").filter(pk=pk).first()
        if rewind is None:
            raise CommandError(f"No rewind {pk}.")
        return rewind

    def _scope(self, options: dict[str, Any]) -> Scope:
        if not options["agent"] or not options["since"]:
            raise CommandError("--agent and --since are needed to plan a rewind.")
        agent = Agent.objects.filter(slug=options["agent"]).first()
        if agent is None:
            raise CommandError(f"No agent {options['agent']!r}.")
        try:
            since = parse_moment(options["since"])
            until = parse_moment(options["until"]) if options["until"] else timezone.now()
        except MomentError as exc:
            raise CommandError(str(exc)) from None
        return Scope(
            agent=agent,
            since=since,
            until=until,
            release_version=options["release"],
            session_id=options["session"],
            resource=options["resource"],
        )

    def _plan(self, plan: dict[str, Any]) -> None:
        write = self.stdout.write
        cancel = f"{plan['to_cancel']} to cancel (not run yet), " if plan["to_cancel"] else ""
        write(f"{plan['actions']} actions: {plan['to_undo']} to undo, {cancel}{plan['left']} left")
        write(f"  window: {plan['since'].isoformat()} to {plan['until'].isoformat()}")
        write(f"  by class: {plan['by_class']}")
        for how, count in plan["undo_by"].items():
            write(f"  undo {how}: {count}")
        for why, count in plan["left_because"].items():
            write(f"  left, {undo_words(why)}: {count}")
        if plan["needs_approval"]:
            write("  a second person must approve it (REWIND_APPROVAL_THRESHOLD)")
        for row in plan["examples"]:
            how = row["why"] if row["state"] == "pending" else undo_words(row["why"])
            if row["state"] != "pending" and not row["why"].startswith(CANCEL):
                how = f"left, {how}"
            write(f"  {row['created_at']:%H:%M:%S} {row['action']} {row['resource']} -> {how}")

    def _report(self, rewind: Rewind) -> None:
        rewind.refresh_from_db()
        items = rewind.items.select_related("action").order_by("position")
        self.stdout.write(f"rewind {rewind.pk} of {rewind.agent.slug}: {rewind.state}")
        counts = rewind_progress(rewind=rewind)
        self.stdout.write(
            f"  {counts['undone']} undone, {counts['denied']} undo denied, "
            f"{counts['conflict']} conflicts, {counts['failed']} failed, "
            f"{counts['requested']} asked for, {counts['pending']} waiting, "
            f"{counts['cancelled']} cancelled (had not run), {counts['left']} left"
        )
        shortfall = rewind_verdict(rewind=rewind, counts=counts)["shortfall"]
        if shortfall:
            self.stdout.write(f"  {shortfall}")
        for item in items:
            outcome = undo_words(item.outcome) or item.state
            action = item.action
            self.stdout.write(
                f"  {action.created_at:%H:%M:%S} {action.action} {action.resource} {outcome}"
            )
