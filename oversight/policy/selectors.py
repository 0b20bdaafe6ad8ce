"""Reads of policy for a person: what a rule's condition may read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oversight.agents.models import Agent
from oversight.agents.selectors import agents_with_perm
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
