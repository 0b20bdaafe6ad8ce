"""Fault-injection scenarios `manage.py simulate --scenario NAME` plays on top of the demo's
traffic, for the demo and for incident analysis (bench/rca.py measures how often the
analysis names the injected cause first).

Each scenario has a *setup* (made when the run starts) and *steps*, made from
``--scenario-after`` seconds on, at offsets counted in buckets of the incident analysis
(``INCIDENT_BUCKET_SECONDS``: a minute by default). The step marked ``cause`` is the
fault; the simulator prints its audit events (``CAUSE {...}``) so a benchmark can tell
whether the analysis found it. ``--decoys N`` adds N unrelated changes around the cause.

- ``bad-release``: refund-bot gets a release whose instructions make it refund whole
  orders, rolled out to half of its sessions (a canary). The demo agent loads its release
  per session and behaves as it says; the guard rolls the candidate back.
- ``widened-grant``: email-campaigner's grant goes from ``email.send`` to ``email.*``:
  the list deletions it tries now and then, denied until then, go through.
- ``loosened-limit``: refund-bot's refund volume limit is raised twentyfold: refunds it
  held go straight through (visible when the traffic reaches the limit).
- ``owner-drift``: crm-updater gets a new owner; from then on the agent drifts, trying
  more and more billing-field and VIP edits.
- ``changed-tool``: refund-bot also refunds through an MCP tool; the tool's definition
  changes under it, and every call to it is held until an owner accepts it.
- ``noisy-unrelated``: email-campaigner's traffic comes in bursts; an unrelated grant
  (for an action it never asks for) is added, and two buckets later the rule that held
  large sends is deleted.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.contrib.auth import get_user_model

from oversight.agents.models import Agent
from oversight.agents.services import agent_update, token_create, token_revoke
from oversight.agents.tool_pins import SeenTool, tool_pins_record
from oversight.audit.actors import Actor
from oversight.policy.models import Grant, Limit, Rule
from oversight.policy.services import (
    policy_object_create,
    policy_object_delete,
    policy_object_update,
)
from oversight.releases import rollouts
from oversight.releases.models import Release, RolloutState, Stage
from oversight.releases.services import releases_batched

# What the demo agents' config says they do (read by the simulator from the release):
BEHAVIOUR = "demo_behaviour"
OVEREAGER = "overeager"
WITH_MCP = "with-mcp"
DRIFT = "drift"

EAGER_INSTRUCTIONS = (
    "You resolve refund tickets. When a customer is unhappy, refund the whole order at once"
    " (every charge), without asking; speed matters more than checks."
)


class Traffic(Protocol):
    """What a scenario may change in the simulator's agents (client side)."""

    def behave(self, slug: str, behaviour: str) -> None: ...

    def drift(self, slug: str, seconds: float) -> None: ...

    def noisy(self, slug: str) -> None: ...


@dataclass
class Context:
    actor: Actor
    traffic: Traffic
    rng: random.Random
    bucket_seconds: float
    notes: list[str] = field(default_factory=list)


Change = Callable[[Context], str]


@dataclass(frozen=True)
class Step:
    after: float  # buckets after the scenario's start
    change: Change
    cause: bool = False


@dataclass(frozen=True)
class Scenario:
    agent: str
    steps: tuple[Step, ...]
    setup: Change | None = None


def _agent(slug: str) -> Agent:
    return Agent.objects.select_related("team", "owner").get(slug=slug)


# -- bad release ---------------------------------------------------------------------------


def _end_live_rollout(actor: Actor, agent: Agent) -> None:
    live = rollouts.live_rollout(agent)
    if live is None:
        return
    why = "replaced by the demo's bad-release scenario"
    if live.state == RolloutState.AWAITING_APPROVAL:
        rollouts.rollout_cancel(actor=actor, rollout=live, why=why)
    else:
        rollouts.rollout_roll_back(actor=actor, rollout=live, why=why)


def bad_release(ctx: Context) -> str:
    agent = _agent("refund-bot")
    _end_live_rollout(ctx.actor, agent)
    agent.refresh_from_db()
    settings = {**agent.model_settings, BEHAVIOUR: OVEREAGER, "temperature": 0.9}
    with releases_batched(notes="demo: refund whole orders", promote=False):
        agent_update(
            actor=ctx.actor, agent=agent, instructions=EAGER_INSTRUCTIONS, model_settings=settings
        )
    release = Release.objects.filter(agent=agent).order_by("-version").first()
    assert release is not None
    rollouts.rollout_start(
        actor=ctx.actor, release=release, stage=Stage.CANARY, plan=[50, 100], min_decisions=400
    )
    return (
        f"refund-bot v{release.version} (refunds whole orders) is rolling out to 50% of its"
        f" sessions; watch /agents/refund-bot/releases/{release.version}/"
    )


# -- policy faults -------------------------------------------------------------------------


def widened_grant(ctx: Context) -> str:
    grant = Grant.objects.get(agent__slug="email-campaigner", action="email.send")
    policy_object_update(actor=ctx.actor, obj=grant, action="email.*")
    return "email-campaigner may now do email.* (it was email.send): its list deletions go through"


def loosened_limit(ctx: Context) -> str:
    limit = Limit.objects.get(agent__slug="refund-bot", name="refund volume")
    policy_object_update(
        actor=ctx.actor,
        obj=limit,
        max_count=limit.max_count * 20 if limit.max_count else None,
        max_sum=limit.max_sum * 20 if limit.max_sum is not None else None,
    )
    return "refund-bot's refund volume limit is twenty times what it was"


def _rule_deleted(slug: str, name: str) -> Change:
    def change(ctx: Context) -> str:
        rule = Rule.objects.get(agent__slug=slug, name=name)
        policy_object_delete(actor=ctx.actor, obj=rule)
        return f"{slug}'s rule {name!r} is deleted"

    return change


# -- owner change, then drift ----------------------------------------------------------------


def owner_changed(ctx: Context) -> str:
    agent = _agent("crm-updater")
    users = get_user_model().objects.filter(is_active=True).exclude(pk=agent.owner_id)
    new = users.filter(groups=agent.team.group_id).first() or users.order_by("username").first()
    assert new is not None
    agent_update(actor=ctx.actor, agent=agent, owner=new)
    ctx.traffic.drift("crm-updater", 10 * ctx.bucket_seconds)
    return f"crm-updater now belongs to {new.get_username()}; the agent starts to drift"


# -- a tool that changes under the agent ----------------------------------------------------

TOOL_SCHEMA = {
    "type": "object",
    "properties": {"charge": {"type": "string"}, "amount": {"type": "integer"}},
}


def _tool(description: str) -> SeenTool:
    return SeenTool(
        server="payments",
        name="refund",
        action="mcp.payments.refund",
        description=description,
        input_schema=TOOL_SCHEMA,
    )


def tool_in_use(ctx: Context) -> str:
    tool_pins_record(agent=_agent("refund-bot"), tools=[_tool("Refund one charge.")])
    ctx.traffic.behave("refund-bot", WITH_MCP)
    return "refund-bot also refunds through the payments MCP server's refund tool"


def tool_changed(ctx: Context) -> str:
    description = "Refund one charge. Also refunds the rest of the order when asked."
    tool_pins_record(agent=_agent("refund-bot"), tools=[_tool(description)])
    return "the payments MCP server's refund tool changed its definition"


# -- noise and decoys -------------------------------------------------------------------------


def noisy(ctx: Context) -> str:
    ctx.traffic.noisy("email-campaigner")
    return "email-campaigner's traffic comes in bursts"


def _unused_grant(slug: str, action: str) -> Change:
    def change(ctx: Context) -> str:
        agent = _agent(slug)
        policy_object_create(actor=ctx.actor, obj=Grant(agent=agent, action=action))
        return f"{slug} may now {action} (it never asks to)"

    return change


def _purpose_edited(slug: str) -> Change:
    def change(ctx: Context) -> str:
        agent = _agent(slug)
        agent_update(
            actor=ctx.actor, agent=agent, purpose=agent.purpose.rstrip(".") + ", and more."
        )
        return f"{slug}'s purpose is reworded"

    return change


def _token_rotated(slug: str) -> Change:
    def change(ctx: Context) -> str:
        token, _raw = token_create(
            actor=ctx.actor, agent=_agent(slug), environment="production", name="scenario decoy"
        )
        token_revoke(actor=ctx.actor, token=token)
        return f"a token of {slug} is created and revoked"

    return change


def decoys(slug: str) -> list[Change]:
    """Unrelated changes to the agent a scenario is about."""
    return [
        _unused_grant(slug, "reports.read"),
        _purpose_edited(slug),
        _token_rotated(slug),
    ]


SCENARIOS: dict[str, Scenario] = {
    "bad-release": Scenario("refund-bot", (Step(0, bad_release, cause=True),)),
    "widened-grant": Scenario("email-campaigner", (Step(0, widened_grant, cause=True),)),
    "loosened-limit": Scenario("refund-bot", (Step(0, loosened_limit, cause=True),)),
    "owner-drift": Scenario("crm-updater", (Step(0, owner_changed, cause=True),)),
    "changed-tool": Scenario("refund-bot", (Step(0, tool_changed, cause=True),), setup=tool_in_use),
    "noisy-unrelated": Scenario(
        "email-campaigner",
        (
            Step(0, _unused_grant("email-campaigner", "email.template.read")),
            Step(2, _rule_deleted("email-campaigner", "large sends need a human"), cause=True),
        ),
        setup=noisy,
    ),
}


def describe(name: str) -> dict[str, Any]:
    scenario = SCENARIOS[name]
    return {"name": name, "agent": scenario.agent, "steps": len(scenario.steps)}
