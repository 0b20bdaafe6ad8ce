"""Demo traffic: the demo agents ask a running Oversight server before acting, through the
SDK, as real agents would.

Each agent mostly does what its demo policy (oversight/core/demo.py) allows, and now and
then something that is held for a person or denied. Held actions are waited on for
`--hold-wait` seconds, then withdrawn (cancelled) if nobody decided; allowed ones are
"run" and reported (about 5% fail). One line is printed per action. Tokens are minted for
the run and revoked when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from oversight.agents.constants import AgentStatus, Environment
from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import token_create, token_revoke
from oversight.audit.actors import Actor
from oversight.core.demo_scenarios import BEHAVIOUR, SCENARIOS
from oversight.core.demo_traffic import (
    COMPENSATED,
    MOVES,
    DemoStore,
    Intent,
    Move,
    drift_behaviour,
    intents,
    moves_for,
)
from oversight.core.scenario_player import ScenarioPlan, play
from oversight_sdk import (
    ActionNotPermitted,
    ApprovalTimeout,
    AsyncOversight,
    AuthenticationError,
    CompensationTask,
    OversightError,
    OversightUnavailable,
    Reason,
)

ACTOR = Actor.system("simulate")
FAILURE_RATE = 0.05
MAX_IN_FLIGHT = 64  # per agent; held actions wait, so many can be open at once
SESSION_LENGTH = 5  # actions per session; each session loads the agent's release
DEFAULT_AGENTS = "refund-bot,crm-updater,deploy-bot,email-campaigner"
STOP_POLL = 0.1  # seconds between two looks at a caller's stop()
# Share of the total rate each agent gets (deploys are rarer than refunds).
SHARES = {"refund-bot": 35, "crm-updater": 35, "email-campaigner": 20, "deploy-bot": 10}

# -- running one action -------------------------------------------------------------------


class SimulatedFailure(Exception):
    """The pretend downstream call failed."""


@dataclass(frozen=True)
class Outcome:
    status: str  # the decision: allowed, approved, denied, pending, halted, ... or error
    note: str = ""
    result: str = ""  # succeeded or failed, for actions that ran


def _why(reasons: list[Reason]) -> str:
    deciding = [r for r in reasons if r.effect not in ("allow", "permit")] or reasons
    return "; ".join(dict.fromkeys(r.name for r in deciding)) or "no grant"


async def perform(
    client: AsyncOversight,
    intent: Intent,
    *,
    hold_wait: float,
    rng: random.Random,
    session_id: str = "",
    store: DemoStore | None = None,
) -> Outcome:
    """Ask, run if allowed (a short sleep stands in for the real call, which leaves its
    after-state in the demo's store), report. Approved with edited params, it runs those,
    as an agent written for edits does."""
    guard = client.guard(
        intent.action,
        intent.resource,
        params=intent.params,
        reason=intent.reason,
        before=intent.before,
        timeout=hold_wait,
        session_id=session_id,
        accept_edits=True,  # a reviewer's edited params are what runs (guard.params)
        resource_params=intent.resource_params,
    )
    try:
        async with guard:
            await asyncio.sleep(rng.uniform(0.02, 0.2))
            if rng.random() < FAILURE_RATE:
                raise SimulatedFailure("the downstream API answered 502")
            guard.after = intent.after_running(guard.params)
            if store is not None:
                store.write(intent.resource, guard.after)
    except SimulatedFailure as exc:
        assert guard.decision is not None
        return Outcome(guard.decision.status, str(exc), result="failed")
    except ApprovalTimeout as exc:
        # The guard withdrew it (`give_up`): no reviewer approves what will not run.
        why = f"{_why(exc.reasons)}; nobody decided in {exc.waited:.0f}s, withdrawn"
        return Outcome("cancelled", why)
    except ActionNotPermitted as exc:
        return Outcome(exc.status, _why(exc.reasons))
    except OversightError as exc:
        return Outcome("error", str(exc))
    assert guard.decision is not None
    return Outcome(guard.decision.status, result="succeeded")


def format_line(slug: str, intent: Intent, outcome: Outcome) -> str:
    status = f"{outcome.status} -> {outcome.result}" if outcome.result else outcome.status
    line = f"{datetime.now():%H:%M:%S} {slug:<16} {intent.action:<19} {intent.resource:<28}"
    return f"{line} {status}" + (f"  ({outcome.note})" if outcome.note else "")


# -- running the agents -------------------------------------------------------------------


@dataclass
class Run:
    """Shared state of one simulation: stop flag, open tasks, counts, output."""

    write: Callable[[str], None]
    hold_wait: float
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    tally: Counter[str] = field(default_factory=Counter)
    store: DemoStore = field(default_factory=DemoStore)
    # What scenarios changed in the agents (demo_scenarios.Traffic): a behaviour, a drift
    # (its start and length, loop time), bursts.
    behaviours: dict[str, str] = field(default_factory=dict)
    drifts: dict[str, tuple[float, float]] = field(default_factory=dict)
    bursty: set[str] = field(default_factory=set)

    def behave(self, slug: str, behaviour: str) -> None:
        self.behaviours[slug] = behaviour

    def drift(self, slug: str, seconds: float) -> None:
        self.drifts[slug] = (time.monotonic(), max(seconds, 1.0))

    def noisy(self, slug: str) -> None:
        self.bursty.add(slug)

    def behaviour_now(self, slug: str) -> str | None:
        """A scenario's behaviour for the agent now; None: as its release says."""
        if slug in self.drifts:
            start, seconds = self.drifts[slug]
            return drift_behaviour(slug, (time.monotonic() - start) / seconds)
        return self.behaviours.get(slug)

    def record(self, slug: str, intent: Intent, outcome: Outcome) -> None:
        self.tally[outcome.status] += 1
        if outcome.result:
            self.tally[outcome.result] += 1
        self.write(format_line(slug, intent, outcome))

    def on_signal(self) -> None:
        if self.stop.is_set():  # a second Ctrl-C: do not wait for held actions
            for task in list(self.tasks):
                task.cancel()
        else:
            self.write("stopping: finishing open actions (Ctrl-C again to abandon them)")
            self.stop.set()


async def _sleep_or_stop(run: Run, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.stop.wait(), timeout=seconds)


async def _run_until(run: Run, duration: float, stop: Callable[[], bool] | None) -> None:
    """Until `duration` is up (0: no end), Ctrl-C, or the caller's `stop()` says so
    (looked at every STOP_POLL seconds)."""
    if stop is None:
        await _sleep_or_stop(run, duration or float("inf"))
        return
    loop = asyncio.get_running_loop()
    end = loop.time() + (duration or float("inf"))
    while not run.stop.is_set() and loop.time() < end:
        if stop():
            run.write("stopping: finishing open actions")
            return
        await _sleep_or_stop(run, min(STOP_POLL, end - loop.time()))


async def session_moves(
    client: AsyncOversight, slug: str, session_id: str, run: Run | None = None
) -> list[Move]:
    """What the agent does in one session: as a scenario says, or else as its release for
    that session says (the demo's stand-in for a model following its instructions; see
    demo_scenarios.py)."""
    behaviour = run.behaviour_now(slug) if run is not None else None
    if behaviour is not None:
        return moves_for(slug, behaviour)
    try:
        release = await client.release(session_id)
    except OversightError:
        return moves_for(slug)
    return moves_for(slug, str(release.model_settings.get(BEHAVIOUR, "")))


async def agent_loop(
    run: Run, slug: str, client: AsyncOversight, rate: float, rng: random.Random
) -> None:
    """Start actions for one agent at `rate` per second (Poisson arrivals), in sessions of
    SESSION_LENGTH actions, each of which loads its release first."""
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    bursts = Bursts(rng)
    streams: dict[int, Iterator[Intent]] = {}
    session, stream, started = "", iter(()), 0

    async def one(intent: Intent, session_id: str) -> None:
        try:
            outcome = await perform(
                client,
                intent,
                hold_wait=run.hold_wait,
                rng=rng,
                session_id=session_id,
                store=run.store,
            )
            run.record(slug, intent, outcome)
        finally:
            in_flight.release()

    while not run.stop.is_set():
        if started % SESSION_LENGTH == 0:
            session = f"{slug}-{rng.getrandbits(48):012x}"
            moves = await session_moves(client, slug, session, run)
            stream = streams.setdefault(id(moves), intents(rng, moves))
        started += 1
        await in_flight.acquire()
        task = asyncio.create_task(one(next(stream), session))
        run.tasks.add(task)
        task.add_done_callback(run.tasks.discard)
        await _sleep_or_stop(run, rng.expovariate(rate * bursts.factor(slug in run.bursty)))


class Bursts:
    """Noisy traffic: the rate times a factor drawn anew every few seconds."""

    FACTORS = (0.2, 0.5, 1.0, 2.0, 4.0)
    HOLD_SECONDS = 3.0

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.value, self.until = rng, 1.0, 0.0

    def factor(self, noisy: bool) -> float:
        if not noisy:
            return 1.0
        now = asyncio.get_running_loop().time()
        if now >= self.until:
            self.value = self.rng.choice(self.FACTORS)
            self.until = now + self.HOLD_SECONDS * self.rng.uniform(0.5, 1.5)
        return self.value


def compensators_register(run: Run, slug: str, client: AsyncOversight) -> bool:
    """The agent's compensators over the demo's store: read the resource's state, and
    undo by putting back the state the action found. False when it has none."""

    def read(task: CompensationTask) -> Any:
        return run.store.read(task.original.resource)

    def undo(task: CompensationTask) -> Any:
        left = run.store.write(task.original.resource, task.original.before)
        run.write(
            f"{datetime.now():%H:%M:%S} {slug:<16} undo {task.original.action} on "
            f"{task.original.resource}: undone"
        )
        return left

    for action in COMPENSATED.get(slug, ()):
        client.compensator(action, read=read)(undo)
    return slug in COMPENSATED


async def wait_for_server(run: Run, client: AsyncOversight, url: str, timeout: float) -> bool:
    """True once the server answers; False if stopped first. Raises if it never does."""
    loop = asyncio.get_running_loop()
    deadline, said = loop.time() + timeout, False
    while not run.stop.is_set():
        try:
            await client.agent()
            return True
        except OversightUnavailable:
            if loop.time() > deadline:
                raise
            if not said:
                run.write(f"waiting for Oversight at {url} ...")
                said = True
            await _sleep_or_stop(run, 1.0)
    return False


@dataclass(frozen=True)
class SimulationConfig:
    url: str
    rate: float
    duration: float
    hold_wait: float
    connect_timeout: float
    seed: int | None


async def simulate(
    config: SimulationConfig,
    tokens: dict[str, str],
    write: Callable[[str], None],
    scenario: ScenarioPlan | None = None,
    stop: Callable[[], bool] | None = None,
) -> Counter[str]:
    """Run the agents until `config.duration` is up (0: until stopped), playing the
    scenario if there is one; return the counts.

    Stopped by Ctrl-C in the main thread, or by `stop` (for a caller in another thread,
    where no signal reaches the run): called on the event loop a few times a second, so
    cheap and never blocking (``threading.Event.is_set``). Either way open actions are
    finished, as at the end of `duration`."""
    run = Run(write=write, hold_wait=config.hold_wait)
    loop = asyncio.get_running_loop()
    handled = _install_signal_handlers(loop, run.on_signal)
    clients = {
        slug: AsyncOversight(config.url, raw, timeout=10, wait_timeout=config.hold_wait)
        for slug, raw in tokens.items()
    }
    shares = {slug: SHARES.get(slug, 10) for slug in tokens}
    seeder = random.Random(config.seed)  # noqa: S311 - demo traffic, not secrets
    try:
        first = next(iter(clients.values()))
        if not await wait_for_server(run, first, config.url, config.connect_timeout):
            return run.tally
        write(f"simulating {', '.join(tokens)} at {config.rate:g} actions/s against {config.url}")
        loops = [
            asyncio.create_task(
                agent_loop(
                    run,
                    slug,
                    client,
                    config.rate * shares[slug] / sum(shares.values()),
                    random.Random(seeder.random()),  # noqa: S311
                )
            )
            for slug, client in clients.items()
        ]
        if scenario is not None:
            loops.append(asyncio.create_task(play(scenario, run, write, run.stop, ACTOR)))
        loops += [
            asyncio.create_task(client.run_compensators(wait=2, stop=run.stop.is_set))
            for slug, client in clients.items()
            if compensators_register(run, slug, client)
        ]
        await _run_until(run, config.duration, stop)
        run.stop.set()
        await asyncio.gather(*loops)
        await _drain(run)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        for client in clients.values():
            await client.close()
    return run.tally


async def _drain(run: Run) -> None:
    """Let open actions finish (a held one waits at most `hold_wait`), then cancel."""
    if run.tasks:
        await asyncio.wait(set(run.tasks), timeout=run.hold_wait + 10)
    for task in list(run.tasks):
        task.cancel()
    await asyncio.gather(*run.tasks, return_exceptions=True)


def _install_signal_handlers(
    loop: asyncio.AbstractEventLoop, handler: Callable[[], None]
) -> list[int]:
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    return installed


# -- tokens -------------------------------------------------------------------------------


def tokens_mint(slugs: list[str]) -> dict[str, tuple[AgentToken, str]]:
    """A production token per agent, through the same service the dashboard uses."""
    agents = {agent.slug: agent for agent in Agent.objects.filter(slug__in=slugs)}
    missing = [slug for slug in slugs if slug not in agents]
    if missing:
        raise CommandError(f"No agent {', '.join(missing)}: run `manage.py seed_demo` first.")
    unknown = [slug for slug in slugs if slug not in MOVES]
    if unknown:
        raise CommandError(
            f"No simulated traffic for {', '.join(unknown)}; pick from {DEFAULT_AGENTS}."
        )
    for agent in agents.values():  # all checked before any token is minted
        if agent.status != AgentStatus.ACTIVE:
            raise CommandError(f"Agent {agent.slug} is {agent.status}; the server would refuse it.")
        if Environment.PRODUCTION not in agent.environments:
            raise CommandError(f"Agent {agent.slug} is not registered for production.")
    return {
        slug: token_create(
            actor=ACTOR, agent=agents[slug], environment=Environment.PRODUCTION, name="simulate"
        )
        for slug in slugs
    }


def tokens_revoke(minted: dict[str, tuple[AgentToken, str]]) -> None:
    for token, _raw in minted.values():
        token_revoke(actor=ACTOR, token=token)


def summary(tally: Counter[str]) -> str:
    decided = ["allowed", "approved", "pending", "denied", "halted", "rejected", "expired"]
    parts = [f"{name} {tally[name]}" for name in decided if tally[name]]
    parts += [f"{name} {count}" for name, count in tally.items() if name not in decided]
    return ", ".join(parts) or "no actions"


class Command(BaseCommand):
    help = "Run the demo agents against a running Oversight server, through the SDK."
    # call_command("simulate", ..., stop=event.is_set): see simulate().
    stealth_options = ("stop",)

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--rate", type=float, default=2.0, help="Actions per second, all agents."
        )
        parser.add_argument(
            "--duration", type=float, default=0, help="Seconds; 0 runs until stopped."
        )
        parser.add_argument("--agents", default=DEFAULT_AGENTS, help="Comma-separated agent slugs.")
        parser.add_argument(
            "--hold-wait", type=float, default=5.0, help="Seconds to wait on a held action."
        )
        parser.add_argument(
            "--connect-timeout", type=float, default=60.0, help="Seconds to wait for the server."
        )
        parser.add_argument("--seed", type=int, default=None, help="For a repeatable mix.")
        parser.add_argument(
            "--scenario",
            choices=sorted(SCENARIOS),
            help="Play a fault-injection scenario on top of the traffic"
            " (oversight/core/demo_scenarios.py).",
        )
        parser.add_argument(
            "--scenario-after",
            type=float,
            default=0.0,
            help="Seconds of plain traffic before the scenario's fault.",
        )
        parser.add_argument(
            "--decoys",
            type=int,
            default=0,
            choices=range(4),
            help="Unrelated changes to make around the scenario's fault (0 to 3).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["rate"] <= 0:
            raise CommandError("--rate must be positive.")
        slugs = [slug.strip() for slug in options["agents"].split(",") if slug.strip()]
        config = SimulationConfig(
            url=options["url"],
            rate=options["rate"],
            duration=options["duration"],
            hold_wait=options["hold_wait"],
            connect_timeout=options["connect_timeout"],
            seed=options["seed"],
        )
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per action is enough
        if options["scenario_after"] < 0:
            raise CommandError("--scenario-after must not be negative.")
        plan = (
            ScenarioPlan(
                options["scenario"],
                after=options["scenario_after"],
                decoys=options["decoys"],
                seed=options["seed"],
            )
            if options["scenario"]
            else None
        )
        minted = tokens_mint(slugs)
        try:
            raw = {slug: pair[1] for slug, pair in minted.items()}
            tally = asyncio.run(simulate(config, raw, self._write, plan, options.get("stop")))
        except AuthenticationError as exc:
            raise CommandError(
                f"The server does not know our tokens ({exc}): is it on this database?"
            ) from exc
        except OversightUnavailable as exc:
            raise CommandError(f"Oversight did not answer at {config.url}: {exc}") from exc
        finally:
            tokens_revoke(minted)
        self._write(f"done: {summary(tally)}")

    def _write(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()  # line by line even through a pipe, as bin/demo shows it
