"""Re-decide an agent's recorded requests under one of its releases: what would change."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from oversight.agents.models import Agent
from oversight.lib.moments import MomentError, parse_moment
from oversight.releases.models import Release
from oversight.releases.replay import ReplayInputError, ReplayReport, replay

BAD_INPUT = 2


class Command(BaseCommand):
    help = (
        "Replay the agent's recorded decisions of a window under release N (the policy "
        "engine only; nothing is written) and print what would change."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agent", required=True, help="the agent's slug")
        parser.add_argument("--release", required=True, type=int, help="the candidate's version")
        parser.add_argument(
            "--since", default="7d", help="a duration back from now (7d, 24h, 30m) or an ISO date"
        )
        parser.add_argument("--until", default=None, help="likewise; now when left out")
        parser.add_argument("--examples", type=int, default=5, help="examples per transition")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        agent = Agent.objects.filter(slug=options["agent"]).first()
        if agent is None:
            raise CommandError(f"No agent with slug {options['agent']!r}.", returncode=BAD_INPUT)
        release = Release.objects.filter(agent=agent, version=options["release"]).first()
        if release is None:
            raise CommandError(
                f"{agent.slug} has no release v{options['release']}.", returncode=BAD_INPUT
            )
        if options["examples"] < 0:
            raise CommandError("--examples cannot be negative.", returncode=BAD_INPUT)
        try:
            since = parse_moment(options["since"])
            until = parse_moment(options["until"]) if options["until"] else None
            report = replay(
                agent=agent,
                release=release,
                since=since,
                until=until,
                max_examples=options["examples"],
            )
        except (ReplayInputError, MomentError) as exc:
            raise CommandError(str(exc), returncode=BAD_INPUT) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2, default=str))
        else:
            self.stdout.write(render_text(report))


def _reasons(reasons: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['kind']} {r['name']} ({r['effect']})" for r in reasons) or "none"


def render_text(report: ReplayReport) -> str:
    """The report for people, in plain lines."""
    lines = [
        f"Replay of {report.agent} under v{report.release_version}",
        f"Window: {report.since:%Y-%m-%d %H:%M:%S} to {report.until:%Y-%m-%d %H:%M:%S} UTC",
        f"Recorded decisions: {report.total}  (replayed at "
        f"{report.decisions_per_second:,.0f}/s in {report.seconds:.2f} s)",
        f"Unchanged: {report.unchanged}  Changed: {report.changed}",
    ]
    if report.recorded_versions:
        versions = ", ".join(f"{v}: {n}" for v, n in report.recorded_versions.items())
        lines.append(f"Recorded under: {versions}")
    if report.under_stable:
        lines.append(
            f"{report.under_stable} recorded decisions name no release: compared under the "
            f"stable release (v{report.stable_version})."
        )
    if report.errors:
        lines.append(f"{report.errors} decisions met a policy error (counted as deny).")
    if report.truncated:
        lines.append("Stopped early: only the newest recorded decisions were replayed.")
    lines.append(report.not_replayed)
    if not report.transitions:
        lines.append("\nNo decision would change.")
    else:
        lines.append("\nWhat would change:")
        for before, after, count, examples in report.transition_rows():
            lines.append(f"  {before} -> {after}: {count}")
            for ex in examples:
                lines.append(
                    f"    {ex.time:%Y-%m-%d %H:%M:%S} {ex.action} on {ex.resource} "
                    f"params={ex.params_json} id={ex.id}"
                )
                lines.append(f"      before: {_reasons(ex.before_reasons)}")
                lines.append(f"      after:  {_reasons(ex.after_reasons)}")
        lines.append("\nChanges per action:")
        for name, counts in report.by_action.items():
            shown = ", ".join(f"{key}: {n}" for key, n in sorted(counts.items()))
            lines.append(f"  {name}: {shown}")
    return "\n".join(lines) + "\n"
