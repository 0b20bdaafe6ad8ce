"""The compiled policy an agent decides under: a release's grants and rules, with the
limits that apply to the agent, cached per process by release and policy version.

A release's content (oversight/releases) is what is in force, not the grant and rule
rows: those are the agent's working copy, equal to its newest release, which may not be
promoted yet (a staged rollout). The stable release's id and the policy version are read
from the database on the decision path (with the agent), so a cache entry can never be
used after a promotion or a limit edit: both change what the key is made of.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from oversight.agents.models import Agent
from oversight.policy.engine import CompiledPolicy, GrantSpec, LimitSpec, RuleSpec, compile_policy
from oversight.policy.models import Grant, Limit, Rule

logger = logging.getLogger(__name__)
_MAX_ENTRIES = 2048
_Key = tuple[int, int | None]  # agent, release
# Per grant (by its spec id): its reversibility contract, as the release holds it.
Contracts = dict[int, dict[str, Any]]
_Entry = tuple[tuple[int, Any], CompiledPolicy, dict[int, Limit], Contracts]
_cache: OrderedDict[_Key, _Entry] = OrderedDict()
_lock = threading.Lock()


def limits_for(agent: Agent) -> list[Limit]:
    """The agent's own limits, its team's, and everyone's."""
    scope = (
        Q(agent_id=agent.pk) | Q(team_id=agent.team_id) | Q(agent__isnull=True, team__isnull=True)
    )
    return list(Limit.objects.filter(scope).order_by("pk"))


def _approver_set(name: str, kind: str, role: str, people: Iterable[int]) -> dict[str, Any]:
    """What a held action keeps of its rule's approvers (people by id: names change)."""
    return {"rule": name, "kind": kind, "role": role, "people": sorted(people)}


def approver_set(rule: Rule) -> dict[str, Any]:
    """A saved rule's approver set."""
    people = (person.pk for person in rule.approver_people.all())
    return _approver_set(rule.name, rule.approvers, rule.approver_role, people)


def _row_ids(agent: Agent) -> tuple[dict[str, int], dict[str, int]]:
    """The ids of the agent's grant and rule rows, by their content as a release holds it:
    a reason names the row only when the row is exactly what the release says."""
    from oversight.releases.content import canonical, grant_item, rule_item  # releases -> policy

    grants = {canonical(grant_item(g)): g.pk for g in Grant.objects.filter(agent_id=agent.pk)}
    rules = Rule.objects.filter(agent_id=agent.pk).prefetch_related("approver_people")
    return grants, {canonical(rule_item(r)): r.pk for r in rules}


def _contract(item: dict[str, Any]) -> dict[str, Any]:
    return {"reversibility": item.get("reversibility", ""), "undo": item.get("undo")}


def _specs(agent: Agent, content: dict[str, Any]) -> tuple[list[GrantSpec], list[RuleSpec]]:
    """A release's grants and rules as the engine's specs. Items with no equal row get
    negative ids (unique, and shown as no id)."""
    from oversight.releases.content import canonical  # releases -> policy

    grant_ids, rule_ids = _row_ids(agent)
    usernames = {name for item in content.get("rules", []) for name in item["approver_people"]}
    people = dict(
        get_user_model()
        .objects.filter(**{f"{get_user_model().USERNAME_FIELD}__in": usernames})
        .values_list(get_user_model().USERNAME_FIELD, "pk")
    )
    grants = [
        GrantSpec(
            id=grant_ids.get(canonical(item), -index),
            action=item["action"],
            resource=item["resource"],
            expires_at=datetime.fromisoformat(item["expires_at"]) if item["expires_at"] else None,
        )
        for index, item in enumerate(content.get("grants", []), start=1)
    ]
    rules = [
        RuleSpec(
            id=rule_ids.get(canonical(item), -index),
            name=item["name"],
            effect=item["effect"],
            action=item["action"],
            resource=item["resource"],
            condition=item["condition"],
            approvals=item["approvals"],
            expires_in=timedelta(seconds=item["expires_in_seconds"]),
            separation_of_duties=item["separation_of_duties"],
            edits_allowed=item["edits_allowed"],
            approvers=_approver_set(
                item["name"],
                item["approvers"],
                item["approver_role"],
                (people[name] for name in item["approver_people"] if name in people),
            )
            if item["effect"] == "hold"
            else None,
        )
        for index, item in enumerate(content.get("rules", []), start=1)
    ]
    return grants, rules


def _compile(agent: Agent, release_id: int | None) -> _Entry:
    from oversight.releases.models import Release  # releases -> agents -> policy

    content: dict[str, Any] = {}
    if release_id is not None:
        content = Release.objects.filter(pk=release_id).values_list("content", flat=True).first()
        if content is None:  # deleted under us: decide under nothing (deny)
            logger.error("release %s of agent %s is gone", release_id, agent.slug)
            content = {}
    grants, rules = _specs(agent, content)
    contracts = {
        spec.id: _contract(item)
        for spec, item in zip(grants, content.get("grants", []), strict=True)
    }
    limits = limits_for(agent)
    specs = [
        LimitSpec(id=lim.pk, name=lim.name, action=lim.action, resource=lim.resource)
        for lim in limits
    ]
    policy = compile_policy(version=agent.policy_version, grants=grants, rules=rules, limits=specs)
    for problem in policy.problems:  # saved policy is validated, so this means a hand edit
        logger.error("policy of agent %s release %s: %s", agent.slug, release_id, problem)
    stamp = (agent.policy_version, agent.created_at)
    return stamp, policy, {lim.pk: lim for lim in limits}, contracts


def _entry(agent: Agent, release_id: int | None) -> _Entry:
    """The cache entry of one of the agent's releases (by default the stable one).

    Keyed by agent and release, checked against the policy version and the agent's
    creation time: a database that reuses the id of a rolled-back agent (SQLite) can never
    hand over another's policy. Limits are cached with the policy: editing a team's or
    everyone's limit bumps the version of every agent it covers.
    """
    release_id = agent.stable_release_id if release_id is None else release_id
    key, stamp = (agent.pk, release_id), (agent.policy_version, agent.created_at)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamp:
            _cache.move_to_end(key)
            return cached
    entry = _compile(agent, release_id)
    with _lock:
        _cache[key] = entry
        _cache.move_to_end(key)
        while len(_cache) > _MAX_ENTRIES:
            _cache.popitem(last=False)
    return entry


def policy_and_limits_for(
    agent: Agent, release_id: int | None = None
) -> tuple[CompiledPolicy, dict[int, Limit]]:
    """The compiled policy of one of the agent's releases and the limits that may apply
    to the agent, by id."""
    entry = _entry(agent, release_id)
    return entry[1], entry[2]


def grant_contracts_for(agent: Agent, release_id: int | None = None) -> Contracts:
    """The reversibility contracts of a release's grants, by the ids its decisions' grant
    reasons carry (a grant with no row of its own has a negative id)."""
    return _entry(agent, release_id)[3]


def compiled_policy_for(agent: Agent, release_id: int | None = None) -> CompiledPolicy:
    return _entry(agent, release_id)[1]
