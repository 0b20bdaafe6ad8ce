"""Edits to grants, rules and limits: validated, audited, and each bumps the policy version
of every agent it affects, in the same transaction, so no cache can serve the old policy."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Model

from oversight.agents.models import Agent
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.audit.snapshot import snapshot
from oversight.policy.constants import Approvers, Effect
from oversight.policy.models import Grant, Limit, Rule
from oversight.policy.validation import validate_condition, validate_contract, validate_patterns
from oversight.releases.services import release_after_change

_VERBS = {
    Grant: (verbs.GRANT_CREATED, verbs.GRANT_UPDATED, verbs.GRANT_DELETED),
    Rule: (verbs.RULE_CREATED, verbs.RULE_UPDATED, verbs.RULE_DELETED),
    Limit: (verbs.LIMIT_CREATED, verbs.LIMIT_UPDATED, verbs.LIMIT_DELETED),
}


def _affected_agents(obj: Grant | Rule | Limit) -> Any:
    if obj.agent_id:
        return Agent.objects.filter(pk=obj.agent_id)
    if isinstance(obj, Limit) and obj.team_id:
        return Agent.objects.filter(team_id=obj.team_id)
    return Agent.objects.all()  # a limit on everyone


def _bump_versions(obj: Grant | Rule | Limit) -> None:
    _affected_agents(obj).update(policy_version=F("policy_version") + 1)


def _changed(actor: Actor, obj: Grant | Rule | Limit) -> None:
    """Grants and rules are in the agent's release: a change cuts (and promotes) one.
    Limits are not: they stay with the agent, team or everyone."""
    if not isinstance(obj, Limit):
        release_after_change(actor=actor, agent_id=obj.agent_id)


def _validate(obj: Model) -> None:
    obj.full_clean()
    validate_patterns(obj)
    if isinstance(obj, Rule):
        validate_condition(obj)
    if isinstance(obj, Grant):
        validate_contract(obj)


def _approvers_set(rule: Rule, people: Any) -> None:
    """The rule's named approvers (when given), then the check that enough people can
    approve what it holds. A refusal rolls the whole save back."""
    from oversight.approvals.eligibility import rule_unsatisfiable  # approvals -> policy

    if people is not None:
        rule.approver_people.set(people if rule.approvers == Approvers.PEOPLE else [])
    problem = rule_unsatisfiable(rule)
    if problem:
        raise ValidationError(problem)


def _state(obj: Grant | Rule | Limit) -> dict[str, Any]:
    """The object as the audit log records it; a permit or forbid rule without what only
    a hold uses, which would read as if it did something."""
    if isinstance(obj, Rule) and obj.effect != Effect.HOLD:
        return snapshot(obj, exclude=Rule.HOLD_ONLY_FIELDS)
    return snapshot(obj)


def _target(obj: Grant | Rule | Limit) -> tuple[str, str, str]:
    return obj._meta.label_lower, str(obj.pk), f"{obj._meta.model_name} {obj}"[:200]


def _record(actor: Actor, obj: Grant | Rule | Limit, verb: str, before: Any, after: Any) -> None:
    audit_record(
        actor=actor,
        verb=verb,
        target=_target(obj),
        before=before,
        after=after,
        agent_id=obj.agent_id,
    )


@transaction.atomic
def policy_object_create(
    *, actor: Actor, obj: Grant | Rule | Limit, approver_people: Any = None
) -> Grant | Rule | Limit:
    """Save a new grant, rule or limit (built but unsaved by the caller). A hold rule is
    refused when fewer people can approve what it holds than it needs."""
    _validate(obj)
    obj.save()
    if isinstance(obj, Rule):
        _approvers_set(obj, approver_people)
    _bump_versions(obj)
    _record(actor, obj, _VERBS[type(obj)][0], None, _state(obj))
    _changed(actor, obj)
    return obj


@transaction.atomic
def policy_object_update(
    *, actor: Actor, obj: Grant | Rule | Limit, **changes: Any
) -> Grant | Rule | Limit:
    locked = type(obj).objects.select_for_update(no_key=True).get(pk=obj.pk)
    before = _state(locked)
    people = changes.pop("approver_people", None)
    for field, value in changes.items():
        setattr(locked, field, value)
    _validate(locked)
    locked.save()
    if isinstance(locked, Rule):
        _approvers_set(locked, people)
    after = _state(locked)
    if after == before:
        return locked
    _bump_versions(locked)
    _record(actor, locked, _VERBS[type(obj)][1], before, after)
    _changed(actor, locked)
    return locked


@transaction.atomic
def policy_object_delete(*, actor: Actor, obj: Grant | Rule | Limit) -> None:
    locked = type(obj).objects.select_for_update(no_key=True).get(pk=obj.pk)
    before = _state(locked)
    _bump_versions(locked)
    _record(actor, locked, _VERBS[type(obj)][2], before, None)
    locked.delete()
    _changed(actor, locked)
