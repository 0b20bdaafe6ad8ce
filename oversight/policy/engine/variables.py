"""The variables a condition may read, with their types, for people writing conditions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    name: str
    type: str  # in words
    meaning: str
    example: str


VARIABLES = (
    Variable("action", "string", "the action asked for", 'action.startsWith("payments.")'),
    Variable("resource", "string", "what the action is on", 'resource.startsWith("stripe:")'),
    Variable("params", "map", "the action's parameters, by name", "params.amount > 500"),
    Variable(
        "agent",
        "map of strings",
        "agent.slug, agent.team, agent.risk_tier and agent.owner",
        'agent.risk_tier == "high"',
    ),
    Variable("env", "string", '"production" or "staging"', 'env == "production"'),
    Variable(
        "time",
        "timestamp",
        "when the action is asked (UTC)",
        'time.getHours("Europe/Paris") >= 18',
    ),
    Variable(
        "undo",
        "bool",
        "true when the action undoes an earlier one (a compensation)",
        "undo && params.amount > 100",
    ),
)
VARIABLE_NAMES = tuple(variable.name for variable in VARIABLES)
