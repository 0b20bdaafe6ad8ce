"""Tool pinning: the MCP tools an agent reaches, each pinned by the hash of its definition.

The first time a proxy shows Oversight a tool (POST /api/v1/tools), its description and
input schema are recorded for the agent. A different definition later is kept beside the
pinned one and the tool's action is put in ``Agent.changed_tools``: the decision pipeline
holds every call to it (gateway/pipeline.py, ``standing_holds``) until an owner accepts
the new definition on the agent's page, or until the tool is listed with its pinned
definition again (the change withdrawn, as when a server's bad deploy is rolled back).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from oversight.agents.locking import agent_lock
from oversight.agents.models import Agent, ToolPin
from oversight.agents.selectors import tool_change_event
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.hashing import canonical_hash
from oversight.live.publish import after_commit

PINNED, CHANGED = "pinned", "changed"


@dataclass(frozen=True)
class SeenTool:
    """A tool as a proxy listed it."""

    server: str
    name: str
    action: str
    description: str
    input_schema: dict[str, Any]

    @property
    def definition(self) -> dict[str, Any]:
        return {"description": self.description, "input_schema": self.input_schema}

    @property
    def definition_hash(self) -> str:
        return canonical_hash(self.definition)


def tool_pins_record(*, agent: Agent, tools: list[SeenTool]) -> dict[str, str]:
    """Pin each tool seen for the first time; keep a changed definition for an owner to
    accept (its calls are held meanwhile); withdraw a change when the tool is back to its
    pinned definition. Returns each action's pin state.

    Listing the same tools again writes nothing and takes no lock."""
    actions = [tool.action for tool in tools]
    known = {pin.action: pin for pin in agent.tool_pins.filter(action__in=actions)}
    if all(_unchanged(known.get(tool.action), tool) for tool in tools):
        return {tool.action: _state(known[tool.action]) for tool in tools}
    return _record(agent_id=agent.pk, tools=tools)


def _unchanged(pin: ToolPin | None, tool: SeenTool) -> bool:
    """Nothing to write: the definition pinned with no change noted, or the change noted."""
    if pin is None:
        return False
    return tool.definition_hash == (pin.changed_hash if pin.changed else pin.definition_hash)


def _state(pin: ToolPin) -> str:
    return CHANGED if pin.changed else PINNED


@transaction.atomic
def _record(*, agent_id: int, tools: list[SeenTool]) -> dict[str, str]:
    # The agent's row is locked so two proxies listing at once pin a tool once, and so
    # ``changed_tools`` is rewritten by one of them at a time.
    agent = agent_lock(agent_id)
    pins = {pin.action: pin for pin in ToolPin.objects.select_for_update().filter(agent=agent)}
    now = timezone.now()
    actor = Actor.for_agent(agent)
    for tool in tools:
        pin = pins.get(tool.action)
        if pin is None:
            pins[tool.action] = _pin(agent, tool, actor)
        elif tool.definition_hash == pin.definition_hash:
            _withdraw_change(pin, actor)
        elif not _unchanged(pin, tool):
            _note_change(pin, tool, actor, now)
    changed = sorted(action for action, pin in pins.items() if pin.changed)
    if changed != sorted(agent.changed_tools or []):
        Agent.objects.filter(pk=agent.pk).update(changed_tools=changed)
        before = set(agent.changed_tools or [])
        _held_calls_retold(agent.pk, set(changed) ^ before, approvable=before - set(changed))
    return {tool.action: _state(pins[tool.action]) for tool in tools}


def _held_calls_retold(agent_id: int, actions: set[str], *, approvable: set[str]) -> None:
    """Held calls of these tools became approvable, or stopped being (a change noted or
    accepted, approvals/eligibility.py): once committed, open queues and action pages are
    sent them again, with or without their Approve button, and the reviewers of those
    now approvable are told of them (they were not while nobody could approve them)."""
    from oversight.gateway.constants import ActionStatus
    from oversight.gateway.models import Action  # gateway -> agents
    from oversight.live import broadcasts
    from oversight.notifications.services import notify_action_held

    held = Action.objects.filter(agent_id=agent_id, action__in=actions, status=ActionStatus.PENDING)
    for action_id, action in held.values_list("pk", "action"):
        after_commit(functools.partial(broadcasts.action_changed, action_id, created=False))
        if action in approvable:
            after_commit(functools.partial(notify_action_held, action_id=action_id))


def _pin(agent: Agent, tool: SeenTool, actor: Actor) -> ToolPin:
    pin = ToolPin.objects.create(
        agent=agent,
        server=tool.server,
        tool=tool.name,
        action=tool.action,
        definition=tool.definition,
        definition_hash=tool.definition_hash,
    )
    _audit(pin, actor, verbs.TOOL_PINNED, None, _shown(pin.definition, pin.definition_hash, pin))
    return pin


def _note_change(pin: ToolPin, tool: SeenTool, actor: Actor, now: Any) -> None:
    before = (  # the definition it replaces: the change noted before, or the pinned one
        _shown(pin.changed_definition, pin.changed_hash, pin)
        if pin.changed
        else _shown(pin.definition, pin.definition_hash, pin)
    )
    pin.changed_definition = tool.definition
    pin.changed_hash = tool.definition_hash
    pin.changed_at = now
    pin.save(update_fields=["changed_definition", "changed_hash", "changed_at"])
    _audit(pin, actor, verbs.TOOL_CHANGED, before, _shown(tool.definition, pin.changed_hash, pin))
    after_commit(functools.partial(_owner_told, pin.pk, pin.changed_hash))


def _owner_told(pin_id: int, changed_hash: str) -> None:
    """Once committed: the agent's owner, the one who can let the calls run again, hears
    of the change (the reviewers cannot approve them: approvals/eligibility.py)."""
    from oversight.notifications.constants import Kind  # notifications -> agents
    from oversight.notifications.services import notify_people

    pin = ToolPin.objects.select_related("agent__owner", "agent__team").filter(pk=pin_id).first()
    if pin is None or pin.changed_hash != changed_hash:  # accepted or changed again since
        return
    agent = pin.agent
    notify_people(
        kind=Kind.TOOL_CHANGED,
        team=agent.team,
        users=[agent.owner],
        title=f"{pin.server}/{pin.tool} of {agent.name} changed its definition",
        body=f"Every call of {agent.name} to {pin.server}/{pin.tool} is held until an owner "
        "accepts the new definition. Compare it with the pinned one on the agent's page.",
        link=reverse("agents:detail", args=[agent.slug]) + "#agent-tools",
        event=tool_change_event(pin.pk, changed_hash),
        agent=agent,
    )


def _withdraw_change(pin: ToolPin, actor: Actor) -> None:
    """The tool is listed with its pinned definition again: the change noted is withdrawn,
    and the calls held only for it are cancelled, to be asked again."""
    if not pin.changed:
        return
    before = _shown(pin.changed_definition, pin.changed_hash, pin)
    pin.changed_definition, pin.changed_hash, pin.changed_at = None, "", None
    pin.save(update_fields=["changed_definition", "changed_hash", "changed_at"])
    _cancel_held_for_change(
        pin, actor, "the tool is back to its pinned definition; call again to have it decided"
    )
    _audit(
        pin, actor, verbs.TOOL_RESTORED, before, _shown(pin.definition, pin.definition_hash, pin)
    )


def _cancel_held_for_change(pin: ToolPin, actor: Actor, why: str) -> int:
    from oversight.gateway.lifecycle import actions_cancel_held_for_tool  # gateway -> agents

    return actions_cancel_held_for_tool(
        actor=actor, agent_id=pin.agent_id, action_name=pin.action, why=why
    )


@transaction.atomic
def tool_pin_accept(
    *, actor: Actor, pin: ToolPin, changed_hash: str, user: Any
) -> tuple[ToolPin, int]:
    """Accept the changed definition the owner was shown (``changed_hash``): it becomes
    the pinned one and the tool's calls are no longer held for it; calls held only for
    the change are cancelled, to be asked again. Refused when the definition changed
    again meanwhile (the owner must look at the new one). Returns the pin and how many
    calls were cancelled."""
    agent = agent_lock(pin.agent_id)
    locked = ToolPin.objects.select_for_update().get(pk=pin.pk)
    if not locked.changed:
        raise ValidationError("This tool's definition has not changed; nothing to accept.")
    if locked.changed_hash != changed_hash:
        raise ValidationError("The definition changed again since this page was shown; look again.")
    before = {**locked.definition, "hash": locked.definition_hash}
    locked.definition, locked.definition_hash = locked.changed_definition, locked.changed_hash
    locked.changed_definition, locked.changed_hash, locked.changed_at = None, "", None
    locked.accepted_at, locked.accepted_by = timezone.now(), user
    locked.save()
    remaining = [action for action in agent.changed_tools or [] if action != locked.action]
    Agent.objects.filter(pk=agent.pk).update(changed_tools=remaining)
    cancelled = _cancel_held_for_change(
        locked, actor, "the tool's new definition was accepted; call again to have it decided"
    )
    # Held by a rule too: approvable now.
    _held_calls_retold(agent.pk, {locked.action}, approvable={locked.action})
    after = {**locked.definition, "hash": locked.definition_hash}
    _audit(locked, actor, verbs.TOOL_ACCEPTED, before, after)
    return locked, cancelled


def _shown(definition: dict[str, Any], definition_hash: str, pin: ToolPin) -> dict[str, Any]:
    """A definition as the audit log shows it: the tool's action, the definition, its hash."""
    return {"action": pin.action, **definition, "hash": definition_hash}


def _audit(
    pin: ToolPin, actor: Actor, verb: str, before: dict[str, Any] | None, after: dict[str, Any]
) -> None:
    audit_record(
        actor=actor,
        verb=verb,
        target=("agents.toolpin", str(pin.pk), str(pin)[:200]),
        before=before,
        after=after,
        agent_id=pin.agent_id,
    )
