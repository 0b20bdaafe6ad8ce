"""The compiled policy for an agent, cached per process by the agent's policy version.

The version is read from the database on the decision path (with the agent), so a cache
entry can never be used after an edit: every edit bumps the version in its transaction.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from django.db.models import Q

from oversight.agents.models import Agent
from oversight.policy.engine import CompiledPolicy, GrantSpec, LimitSpec, RuleSpec, compile_policy
from oversight.policy.models import Grant, Limit, Rule

logger = logging.getLogger(__name__)
_MAX_ENTRIES = 2048
_cache: OrderedDict[int, tuple[tuple[int, Any], CompiledPolicy, dict[int, Limit]]] = OrderedDict()
_lock = threading.Lock()


def limits_for(agent: Agent) -> list[Limit]:
    """The agent's own limits, its team's, and everyone's."""
    scope = (
        Q(agent_id=agent.pk) | Q(team_id=agent.team_id) | Q(agent__isnull=True, team__isnull=True)
    )
    return list(Limit.objects.filter(scope).order_by("pk"))


def approver_set(rule: Rule) -> dict[str, Any]:
    """What a held action keeps of its rule's approvers (people by id: names change)."""
    return {
        "rule": rule.name,
        "kind": rule.approvers,
        "role": rule.approver_role,
        "people": sorted(person.pk for person in rule.approver_people.all()),
    }


def _compile(agent: Agent) -> tuple[CompiledPolicy, dict[int, Limit]]:
    grants = [
        GrantSpec(id=g.pk, action=g.action, resource=g.resource, expires_at=g.expires_at)
        for g in Grant.objects.filter(agent_id=agent.pk)
    ]
    rules = [
        RuleSpec(
            id=r.pk,
            name=r.name,
            effect=r.effect,  # type: ignore[arg-type]
            action=r.action,
            resource=r.resource,
            condition=r.condition,
            approvals=r.approvals,
            expires_in=timedelta(seconds=r.expires_in_seconds),
            separation_of_duties=r.separation_of_duties,
            edits_allowed=r.edits_allowed,
            approvers=approver_set(r) if r.effect == "hold" else None,
        )
        for r in Rule.objects.filter(agent_id=agent.pk).prefetch_related("approver_people")
    ]
    limits = limits_for(agent)
    specs = [
        LimitSpec(id=lim.pk, name=lim.name, action=lim.action, resource=lim.resource)
        for lim in limits
    ]
    policy = compile_policy(version=agent.policy_version, grants=grants, rules=rules, limits=specs)
    for problem in policy.problems:  # saved policy is validated, so this means a hand edit
        logger.error("policy of agent %s v%s: %s", agent.slug, agent.policy_version, problem)
    return policy, {lim.pk: lim for lim in limits}


def policy_and_limits_for(agent: Agent) -> tuple[CompiledPolicy, dict[int, Limit]]:
    """The compiled policy and the limits that may apply to the agent, by id.

    Keyed by id, checked against the version and the creation time: a database that
    reuses the id of a rolled-back agent (SQLite) can never hand over another's policy.
    Limits are cached with the policy: editing a team's or everyone's limit bumps the
    version of every agent it covers.
    """
    stamp = (agent.policy_version, agent.created_at)
    with _lock:
        cached = _cache.get(agent.pk)
        if cached is not None and cached[0] == stamp:
            _cache.move_to_end(agent.pk)
            return cached[1], cached[2]
    policy, limits = _compile(agent)
    with _lock:
        _cache[agent.pk] = (stamp, policy, limits)
        _cache.move_to_end(agent.pk)
        while len(_cache) > _MAX_ENTRIES:
            _cache.popitem(last=False)
    return policy, limits


def compiled_policy_for(agent: Agent) -> CompiledPolicy:
    return policy_and_limits_for(agent)[0]
