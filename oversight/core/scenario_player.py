"""Play a fault-injection scenario (demo_scenarios.py) during a simulation: its setup at
once, its steps from ``after`` seconds on, at their offsets in analysis buckets, with
``decoys`` unrelated changes around the cause. Each change is made through the services
in a worker thread; the cause's audit events are printed as ``CAUSE {json}``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Max
from django.utils import timezone

from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.audit.verbs import ACTION_VERBS
from oversight.core.demo_scenarios import SCENARIOS, Change, Context, Traffic, decoys

# With decoys, the scenario's steps move this many buckets later, so decoys can come first.
DECOY_SHIFT = 2.0
# Between two changes, at least this long (seconds): each is its own change, even when the
# one before took long to make (incidents/analysis/changes.py groups what is closer).
BETWEEN_CHANGES = 1.0


@dataclass(frozen=True)
class ScenarioPlan:
    name: str
    after: float = 0.0  # seconds of plain traffic first
    decoys: int = 0
    seed: int | None = None


def _apply(change: Change, ctx: Context) -> tuple[str, list[int], str]:
    close_old_connections()
    first = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    at = timezone.now()
    said = change(ctx)
    seqs = list(
        AuditEvent.objects.filter(seq__gt=first)
        .exclude(verb__in=ACTION_VERBS)
        .values_list("seq", flat=True)
    )
    close_old_connections()
    return said, seqs, at.isoformat()


def _schedule(plan: ScenarioPlan, rng: random.Random) -> list[tuple[float, Change, bool]]:
    scenario = SCENARIOS[plan.name]
    steps = [(step.after, step.change, step.cause) for step in scenario.steps]
    if plan.decoys <= 0:
        return steps
    cause_at = next(after for after, _change, cause in steps if cause) + DECOY_SHIFT
    steps = [(after + DECOY_SHIFT, change, cause) for after, change, cause in steps]
    for decoy in rng.sample(decoys(scenario.agent), k=min(plan.decoys, 3)):
        # Before the cause or just after it, never in the same moment (that would be one
        # change made together with it).
        offset = rng.choice([rng.uniform(-DECOY_SHIFT, -0.6), rng.uniform(0.6, 1.0)])
        steps.append((max(cause_at + offset, 0.0), decoy, False))
    return sorted(steps, key=lambda step: step[0])


async def play(
    plan: ScenarioPlan,
    traffic: Traffic,
    write: Callable[[str], None],
    stop: asyncio.Event,
    actor: Actor,
) -> None:
    scenario = SCENARIOS[plan.name]
    rng = random.Random(plan.seed)  # noqa: S311 - the scenario's timing, not secrets
    bucket = float(settings.INCIDENT_BUCKET_SECONDS)
    ctx = Context(actor=actor, traffic=traffic, rng=rng, bucket_seconds=bucket)
    apply = sync_to_async(_apply, thread_sensitive=True)
    if scenario.setup is not None:
        said, _seqs, _at = await apply(scenario.setup, ctx)
        write(f"scenario {plan.name}: {said}")
    loop = asyncio.get_running_loop()
    start = loop.time() + plan.after
    last = float("-inf")
    for after, change, cause in _schedule(plan, rng):
        due = max(start + after * bucket, last + BETWEEN_CHANGES)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(due - loop.time(), 0.0))
        if stop.is_set():
            return
        said, seqs, at = await apply(change, ctx)
        last = loop.time()
        write(f"scenario {plan.name}: {said}")
        if cause:
            found = {"scenario": plan.name, "agent": scenario.agent, "at": at, "seqs": seqs}
            write("CAUSE " + json.dumps(found))
