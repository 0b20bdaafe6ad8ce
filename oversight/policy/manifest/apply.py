"""Make the database match a manifest, through the services (so every change is audited).

Agents in the manifest get exactly the grants, rules and limits it lists; agents it does
not mention are left alone. Everything happens in one transaction: any problem and
nothing changes. A dry run does the same work and rolls it back.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils.text import slugify

from oversight.accounts.models import Team
from oversight.accounts.services import (
    team_create,
    team_reviewer_add,
    team_reviewer_remove,
    team_update,
)
from oversight.agents.constants import AgentStatus
from oversight.agents.models import Agent
from oversight.agents.services import agent_create, agent_update
from oversight.audit.actors import Actor
from oversight.policy.manifest.spec import AgentSpec, LimitSpec, Manifest, ManifestError
from oversight.policy.models import Grant, Limit, Rule
from oversight.policy.services import (
    policy_object_create,
    policy_object_delete,
    policy_object_update,
)
from oversight.policy.validation import PASSED_EXPIRY, expiry_passed
from oversight.releases.services import releases_batched

# A rule's own fields (its approver_people, a many-to-many, are set apart).
_RULE_FIELDS = tuple(
    name for name in (*Rule.MATCH_FIELDS, *Rule.HOLD_ONLY_FIELDS) if name != "approver_people"
)
_LIMIT_FIELDS = (
    "action",
    "resource",
    "window_seconds",
    "max_count",
    "sum_param",
    "max_sum",
    "on_exceed",
)


class _Plan:
    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.changes: list[str] = []

    def note(self, sign: str, text: str) -> None:
        self.changes.append(f"{sign} {text}")


def _teams(plan: _Plan, manifest: Manifest) -> dict[str, Team]:
    teams = {team.name: team for team in Team.objects.all()}
    for spec in manifest.teams:
        team = teams.get(spec.name) or Team.objects.filter(slug=slugify(spec.name)).first()
        if team is None:
            teams[spec.name] = team_create(
                actor=plan.actor, name=spec.name, description=spec.description or ""
            )
            plan.note("+", f"team {spec.name}")
        elif spec.description is not None and team.description != spec.description:
            teams[spec.name] = team_update(
                actor=plan.actor, team=team, name=team.name, description=spec.description
            )
            plan.note("~", f"team {spec.name}: description")
    for index, spec in enumerate(manifest.teams):
        if spec.reviewers is not None:
            _reviewers(plan, teams[spec.name], spec.reviewers, f"teams[{index}].reviewers")
    return teams


def _people(names: tuple[str, ...], path: str, *, kept: Any = ()) -> list[Any]:
    """The active users of these names; of ``kept`` (those already there), anyone."""
    found = {u.get_username(): u for u in kept if u.get_username() in names}
    found |= {
        u.get_username(): u
        for u in get_user_model().objects.filter(username__in=names, is_active=True)
    }
    missing = [name for name in names if name not in found]
    if missing:
        raise ManifestError(f"{path}: no active user {missing[0]!r}")
    return [found[name] for name in names]


def _reviewers(plan: _Plan, team: Team, names: tuple[str, ...], path: str) -> None:
    """The team's reviewers become exactly those listed."""
    current = {u.pk: u for u in team.reviewers}
    wanted = {u.pk: u for u in _people(names, path, kept=current.values())}
    for pk, person in current.items():
        if pk not in wanted:
            team_reviewer_remove(actor=plan.actor, team=team, user=person)
            plan.note("-", f"team {team.name}: reviewer {person.get_username()}")
    for pk, person in wanted.items():
        if pk not in current:
            team_reviewer_add(actor=plan.actor, team=team, user=person)
            team.refresh_from_db()
            plan.note("+", f"team {team.name}: reviewer {person.get_username()}")


def _agent(plan: _Plan, spec: AgentSpec, path: str, teams: dict[str, Team]) -> Agent:
    team = teams.get(spec.team)
    if team is None:
        raise ManifestError(f"{path}.team: no team {spec.team!r} (list it under teams:)")
    agent = Agent.objects.select_related("owner", "team").filter(slug=spec.slug).first()
    if agent is not None and agent.status == AgentStatus.RETIRED:  # exports leave them out
        raise ManifestError(f"{path}: {spec.slug} is retired: it is kept read-only")
    if agent is not None and agent.owner.get_username() == spec.owner:
        owner = agent.owner  # unchanged: an export applies as it is, whoever left since
    else:
        owner = get_user_model().objects.filter(username=spec.owner, is_active=True).first()
    if owner is None:
        raise ManifestError(f"{path}.owner: no active user {spec.owner!r}")
    wanted: dict[str, Any] = {
        "name": spec.name,
        "purpose": spec.purpose,
        "owner": owner,
        "team": team,
        "environments": list(spec.environments),
        "risk_tier": spec.risk_tier,
        "review_interval_days": spec.review_every_days,
        **(spec.config or {}),
    }
    try:
        if agent is None:
            agent = agent_create(actor=plan.actor, slug=spec.slug, **wanted)
            plan.note("+", f"agent {spec.slug}")
            return agent
        changed = {key: value for key, value in wanted.items() if getattr(agent, key) != value}
        if changed:
            agent = agent_update(actor=plan.actor, agent=agent, **changed)
            plan.note("~", f"agent {spec.slug}: {', '.join(sorted(changed))}")
    except ValidationError as exc:
        raise _refused(path, exc) from None
    return agent


# The manifest's name for a model field, so an error names the key to fix.
_KEYS = {
    "condition": "when",
    "expires_in_seconds": "expires_in",
    "window_seconds": "window",
    "sum_param": "max_sum.param",
    "max_sum": "max_sum.value",
}


def _refused(path: str, exc: ValidationError) -> ManifestError:
    """A service's refusal, at the manifest's place of the entry (``agents[0].rules[1]``).
    Sentences lose their full stop: the command adds its own sentence after."""

    def text(errors: list[str]) -> str:
        return "; ".join(error.rstrip(".") for error in errors)

    if not hasattr(exc, "error_dict"):
        return ManifestError(f"{path}: {text(exc.messages)}")
    parts = [
        f"{path}: {text(errors)}"
        if name == NON_FIELD_ERRORS
        else f"{path}.{_KEYS.get(name, name)}: {text(errors)}"
        for name, errors in exc.message_dict.items()
    ]
    return ManifestError("; ".join(parts))


def _differs(obj: Any, name: str, value: Any) -> bool:
    if name == "approver_people":
        return sorted(p.get_username() for p in obj.approver_people.all()) != sorted(value)
    return getattr(obj, name) != value


def _sync(
    plan: _Plan,
    label: str,
    existing: dict[Any, Any],
    wanted: dict[Any, tuple[Any, dict[str, Any], str]],
) -> None:
    """Create, update and delete so that ``existing`` (key -> object) matches ``wanted``
    (key -> (unsaved object, fields to compare, its place in the manifest)). A rule's
    ``approver_people`` are compared by username and saved as people."""
    for key, obj in existing.items():
        if key not in wanted:
            policy_object_delete(actor=plan.actor, obj=obj)
            plan.note("-", f"{label} {obj}")
    for key, (new, fields, path) in wanted.items():
        current = existing.get(key)
        try:
            if isinstance(new, Grant) and expiry_passed(
                new.expires_at, current.expires_at if current is not None else None
            ):
                raise ValidationError({"expires_at": PASSED_EXPIRY})
            people = fields.get("approver_people")
            kept = current.approver_people.all() if people and current is not None else ()
            extra = {"approver_people": _people(tuple(people), path, kept=kept)} if people else {}
            if current is None:
                policy_object_create(actor=plan.actor, obj=new, **extra)
                plan.note("+", f"{label} {new}")
                continue
            changed = {
                name: value for name, value in fields.items() if _differs(current, name, value)
            }
            if changed:
                if "approver_people" in changed:
                    changed["approver_people"] = extra.get("approver_people", [])
                policy_object_update(actor=plan.actor, obj=current, **changed)
                plan.note("~", f"{label} {current}: {', '.join(sorted(changed))}")
        except ValidationError as exc:
            raise _refused(path, exc) from None


def _limit_fields(spec: LimitSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in _LIMIT_FIELDS}


def _limits(
    plan: _Plan, label: str, path: str, specs: tuple[LimitSpec, ...], scope: dict[str, Any]
) -> None:
    existing = {lim.name: lim for lim in Limit.objects.filter(**scope)}
    wanted = {
        s.name: (
            Limit(name=s.name, **scope, **_limit_fields(s)),
            _limit_fields(s),
            f"{path}limits[{index}]",
        )
        for index, s in enumerate(specs)
    }
    _sync(plan, label, existing, wanted)


def _policy(plan: _Plan, spec: AgentSpec, agent: Agent, path: str) -> None:
    """The agent's grants, limits and rules, in that order: a rule's condition is checked
    against what the limits say of the parameters (a limit summing ``amount``)."""
    label = f"{spec.slug}:"
    grants = {(g.action, g.resource): g for g in Grant.objects.filter(agent=agent)}
    wanted_grants = {
        (g.action, g.resource): (
            Grant(agent=agent, action=g.action, resource=g.resource, **g.fields()),
            g.fields(),
            f"{path}.grants[{index}]",
        )
        for index, g in enumerate(spec.grants)
    }
    _sync(plan, f"{label} grant", grants, wanted_grants)
    _limits(plan, f"{label} limit", f"{path}.", spec.limits, {"agent": agent, "team": None})
    rules = {r.name: r for r in Rule.objects.filter(agent=agent)}
    wanted_rules = {}
    for index, r in enumerate(spec.rules):
        fields = {name: getattr(r, name) for name in _RULE_FIELDS}
        rule = Rule(agent=agent, name=r.name, **fields)
        fields["approver_people"] = list(r.approver_people)
        wanted_rules[r.name] = (rule, fields, f"{path}.rules[{index}]")
    _sync(plan, f"{label} rule", rules, wanted_rules)


def _apply(plan: _Plan, manifest: Manifest) -> None:
    """Every change as one release per agent (cut when all of them are made)."""
    with releases_batched(notes="policy_apply"):
        teams = _teams(plan, manifest)
        for index, spec in enumerate(manifest.teams):
            _limits(
                plan,
                f"team {spec.name}: limit",
                f"teams[{index}].",
                spec.limits,
                {"agent": None, "team": teams[spec.name]},
            )
        if manifest.limits:
            _limits(plan, "everyone: limit", "", manifest.limits, {"agent": None, "team": None})
        for index, spec in enumerate(manifest.agents):
            path = f"agents[{index}]"
            agent = _agent(plan, spec, path, teams)
            _policy(plan, spec, agent, path)


def manifest_apply(*, manifest: Manifest, actor: Actor, dry_run: bool = False) -> list[str]:
    """Apply the manifest; return the changes made (or that would be made), one per line.

    Limits go before the agents' rules, which are checked against what limits say of the
    parameters."""
    plan = _Plan(actor)
    with transaction.atomic():
        _apply(plan, manifest)
        if dry_run:
            transaction.set_rollback(True)
    return plan.changes
