"""Reads of policy for a person: what a rule's condition may read, and what the policy
page's "Try it" box starts with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oversight.agents.models import Agent
from oversight.agents.selectors import agents_with_perm
from oversight.gateway.models import Action
from oversight.policy.engine.variables import VARIABLES, Variable
from oversight.policy.param_evidence import params_by_action


@dataclass(frozen=True)
class ConditionHelp:
    """The variables of a condition, and the parameters the agent's recent requests
    carried, by action name (name -> type)."""

    variables: tuple[Variable, ...] = VARIABLES
    params_by_action: dict[str, dict[str, str]] = field(default_factory=dict)


def condition_help(*, user: Any, agent: Agent) -> ConditionHelp:
    """For the add-rule form; the agent's parameters only for a person who may view it."""
    if not agents_with_perm(user=user).filter(pk=agent.pk).exists():
        return ConditionHelp()
    return ConditionHelp(params_by_action=params_by_action(agent=agent))


def try_it_example(*, agent: Agent) -> dict[str, Any] | None:
    """The agent's latest request as it asked it (a compensation aside), to try against
    the policy as it stands; None for an agent that has asked nothing yet."""
    return (
        Action.objects.filter(agent=agent, compensates__isnull=True)
        .order_by("-created_at")
        .values("action", "resource", "params")
        .first()
    )
