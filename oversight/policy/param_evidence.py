"""What the parameters of an agent's actions are, from what it has sent and from its limits.

Nothing declares an action's parameters, but the agent's requests show them: if its last
few hundred ``payments.refund`` requests all carried a number ``amount``, a condition
``params.amount > 'abc'`` on that action cannot be right. A limit summing ``amount``
says the same (it refuses a request whose amount is not a number). Where requests
disagree, or nothing was seen, a parameter has no known type and only run time tells.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oversight.agents.models import Agent
from oversight.gateway.models import Action
from oversight.policy.engine.param_types import NUMBER, observed_types
from oversight.policy.engine.patterns import ActionIndex, resource_matcher
from oversight.policy.models import Limit

# The agent's newest actions looked at: enough to see each parameter of its usual actions,
# few enough to read on every save of a rule.
SAMPLE = 500


@dataclass(frozen=True)
class ParamEvidence:
    """Known parameter types (name -> a PARAM_TYPES entry) and where they come from."""

    types: dict[str, str] = field(default_factory=dict)
    requests: int = 0  # requests of the agent they were seen in
    limits: tuple[str, ...] = ()  # names of limits summing one of them

    def sources(self) -> str:
        """Where the types come from, as a sentence."""
        parts = []
        if self.requests:
            plural = "s" if self.requests != 1 else ""
            parts.append(f"this agent's last {self.requests} matching request{plural}")
        if self.limits:
            names = [f"“{name}”" for name in self.limits]
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            parts.append(f"the limit{'s' if len(names) > 1 else ''} {listed}")
        return "Parameter types come from " + " and ".join(parts) + "." if parts else ""


def _recent(agent: Agent) -> list[tuple[str, str, dict]]:
    if agent.pk is None:
        return []
    rows = Action.objects.filter(agent=agent).order_by("-created_at")
    return list(rows.values_list("action", "resource", "params")[:SAMPLE])


def _covers(limit_pattern: str, rule_pattern: str) -> bool:
    """Whether every action the rule's pattern matches is also under the limit's."""
    if limit_pattern in ("*", rule_pattern):
        return True
    return limit_pattern.endswith(".*") and rule_pattern.startswith(limit_pattern[:-1])


def param_evidence(*, agent: Agent, action: str = "*", resource: str = "*") -> ParamEvidence:
    """What is known of the parameters of the agent's actions matching ``action`` and
    ``resource`` (a rule's patterns, assumed valid)."""
    index = ActionIndex([(action, True)])
    matches_resource = resource_matcher(resource) or (lambda _resource: True)
    seen = [
        params
        for name, res, params in _recent(agent)
        if index.lookup(name) and matches_resource(res)
    ]
    types = observed_types(seen)
    limits = (
        Limit.objects.filter(agent__isnull=True, team__isnull=True)
        | Limit.objects.filter(agent_id=agent.pk)
        | Limit.objects.filter(team_id=agent.team_id)
    )
    summing, disputed = [], set()
    for limit in limits.exclude(sum_param="").order_by("name"):
        if not _covers(limit.action, action) or limit.resource not in ("*", resource):
            continue
        if types.get(limit.sum_param, NUMBER) == NUMBER and limit.sum_param not in disputed:
            types[limit.sum_param] = NUMBER
            summing.append(limit.name)
        else:  # the requests say otherwise: leave it to run time
            disputed.add(limit.sum_param)
            types.pop(limit.sum_param, None)
    return ParamEvidence(types=types, requests=len(seen), limits=tuple(summing))


def params_by_action(*, agent: Agent) -> dict[str, dict[str, str]]:
    """Each action name in the agent's recent requests, with its parameters' types."""
    grouped: dict[str, list[dict]] = {}
    for name, _resource, params in _recent(agent):
        grouped.setdefault(name, []).append(params)
    return {name: dict(sorted(observed_types(grouped[name]).items())) for name in sorted(grouped)}
