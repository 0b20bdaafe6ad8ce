"""Scenarios `manage.py simulate --scenario NAME` plays on top of the demo's traffic.

``bad-release``: refund-bot gets a new release whose instructions make it refund whole
orders. It is rolled out to half of refund-bot's sessions (a canary); the demo agent
loads its release per session (``client.release``) and behaves as its release says, so
sessions on the candidate start asking for an action stable never took, and are denied
far more often. The guard (every 30 s) rolls the candidate back with its evidence; the
release page shows it.
"""

from __future__ import annotations

from collections.abc import Callable

from oversight.agents.models import Agent
from oversight.agents.services import agent_update
from oversight.audit.actors import Actor
from oversight.releases import rollouts
from oversight.releases.models import Release, RolloutState, Stage
from oversight.releases.services import releases_batched

# What the demo agents' config says they do (read by the simulator from the release):
BEHAVIOUR = "demo_behaviour"
OVEREAGER = "overeager"

EAGER_INSTRUCTIONS = (
    "You resolve refund tickets. When a customer is unhappy, refund the whole order at once"
    " (every charge), without asking; speed matters more than checks."
)


def _end_live_rollout(actor: Actor, agent: Agent) -> None:
    live = rollouts.live_rollout(agent)
    if live is None:
        return
    why = "replaced by the demo's bad-release scenario"
    if live.state == RolloutState.AWAITING_APPROVAL:
        rollouts.rollout_cancel(actor=actor, rollout=live, why=why)
    else:
        rollouts.rollout_roll_back(actor=actor, rollout=live, why=why)


def bad_release(actor: Actor) -> str:
    agent = Agent.objects.get(slug="refund-bot")
    _end_live_rollout(actor, agent)
    agent.refresh_from_db()
    settings = {**agent.model_settings, BEHAVIOUR: OVEREAGER, "temperature": 0.9}
    with releases_batched(notes="demo: refund whole orders", promote=False):
        agent_update(
            actor=actor, agent=agent, instructions=EAGER_INSTRUCTIONS, model_settings=settings
        )
    release = Release.objects.filter(agent=agent).order_by("-version").first()
    assert release is not None
    rollouts.rollout_start(
        actor=actor, release=release, stage=Stage.CANARY, plan=[50, 100], min_decisions=400
    )
    return (
        f"refund-bot v{release.version} (refunds whole orders) is rolling out to 50% of its"
        f" sessions; watch /agents/refund-bot/releases/{release.version}/"
    )


SCENARIOS: dict[str, Callable[[Actor], str]] = {"bad-release": bad_release}
