"""Approve with edits: a reviewer changes a held action's params and approves that.

What may change: the values, never the shape. The edited params have the same keys as
the ones asked for, each value of the same JSON type (an object's keys likewise, at any
depth); so a reviewer turns `amount: 900` into `amount: 400`, not into another request.
Nor the params the agent said its resource is made of (``Action.resource_params``: `charge`
of `stripe:charge/{charge}`): the edit is decided on the action's resource, and another
charge would be refunded on a decision about this one.

The edited action is decided again by the pipeline's own steps (``pipeline.evaluate``:
kill switches, grants and rules, limits), in the vote's transaction. It fails closed: an
edit the policy denies, that a hold rule forbids to edit, or that would take a limit over
is refused and nothing changes (but for the hold limits that held the action as asked: the
approval is above them, edited or not; ``_above_the_hold``). The quota the held action
reserved is given back and the edited params are charged instead, so a bigger amount is
checked against its limit.

The approval then binds to the edited params: ``Action.params`` becomes them, its
``request_hash`` is computed again (a result reported for other params is refused), and
``requested_params`` keeps what the agent asked for. Approvals cast before the edit are
superseded (they approved other params): with two approvals required, the edited action
needs two approvals of its own, the editor's counting as one.

Who may approve, and by when, binds to the edited params too: the edited action keeps
the stricter of what it had and what a direct ask for the edited params would get (the
approver sets of both, so only people in all of them; the larger number of approvals;
separation of duties if either asks it; edits only if both allow them; the earlier
deadline). An edit can move an action under a stricter rule, never out from under one.
The vote (approvals/services.py) then checks that the editor may approve the result. See
docs/decisions/0018-approve-with-edits.md.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from oversight.approvals.models import ApprovalVote
from oversight.gateway import pipeline
from oversight.gateway.constants import ActionStatus
from oversight.gateway.hashing import action_hash
from oversight.gateway.json_safety import UnsafeJsonError, check_json
from oversight.gateway.models import Action
from oversight.killswitch.selectors import halting_switch_id
from oversight.policy.constants import OnExceed
from oversight.policy.limits import limit_amount, limits_charge, limits_release

MAX_PARAMS_TEXT = 64 * 1024


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def params_problems(asked: dict[str, Any], edited: Any, path: str = "params") -> list[str]:
    """Why ``edited`` is not ``asked`` with other values ([] when it is)."""
    if not isinstance(edited, dict):
        return [f"{path} must be an object ({{...}})."]
    problems = []
    missing = sorted(set(asked) - set(edited))
    added = sorted(set(edited) - set(asked))
    if missing:
        problems.append(f"{path}: keep the keys {', '.join(missing)}.")
    if added:
        problems.append(f"{path}: the keys {', '.join(added)} were not asked for.")
    for key in sorted(set(asked) & set(edited)):
        was, now = asked[key], edited[key]
        if _kind(was) != _kind(now):
            problems.append(f"{path}.{key} must stay {_kind(was)}, not {_kind(now)}.")
        elif isinstance(was, dict):
            problems.extend(params_problems(was, now, f"{path}.{key}"))
    return problems


def edited_params_parse(text: str) -> dict[str, Any]:
    """Params typed in the browser (a JSON object), or ValidationError saying what is wrong."""
    if len(text) > MAX_PARAMS_TEXT:
        raise ValidationError({"params": "The params are too long."})
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValidationError(
            {"params": f"The params are not valid JSON: {exc.msg} (line {exc.lineno})."}
        ) from None
    if not isinstance(value, dict):
        raise ValidationError({"params": "The params must be a JSON object ({...})."})
    return value


def _refuse(message: str) -> ValidationError:
    return ValidationError({"params": message})


def _decided_again(action: Action, params: dict[str, Any], now: datetime) -> pipeline.Outcome:
    """The pipeline's decision for the edited action, as if the agent had asked for it now."""
    agent = action.agent
    credentials = pipeline.Credentials(
        agent=agent, environment=action.environment, switch_id=halting_switch_id(agent_id=agent.pk)
    )
    data = pipeline.ActionInput(
        action=action.action,
        resource=action.resource,
        params=params,
        reason=action.reason,
        reversible=action.reversible,
        before=action.before,
        session_id=action.session_id,
        parent_id=action.parent_id,
    )
    try:
        return pipeline.evaluate(credentials, data, now)
    except Exception as exc:  # a paused agent, an error: no edit (fail closed)
        raise _refuse(f"The edited action could not be decided again: {exc}") from exc


# What binds who may approve a held action, and by when (the audit records them).
BINDING = (
    "approver_sets",
    "approvals_required",
    "separation_of_duties",
    "edits_allowed",
    "expires_at",
)


def _binding(action: Action) -> dict[str, Any]:
    found = {name: getattr(action, name) for name in BINDING}
    found["expires_at"] = action.expires_at.isoformat() if action.expires_at else None
    return found


def _bind_stricter(action: Action, outcome: pipeline.Outcome, now: datetime) -> None:
    """Bind ``action`` to the stricter of what it had and what ``outcome`` (a direct ask
    for the edited params) would have: an edit never loosens who approves, or when."""
    held = outcome.status == ActionStatus.PENDING  # else no rule holds the edited params
    sets = list(action.approver_sets or [])
    sets += [s for s in (outcome.approver_sets if held else []) if s not in sets]
    action.approver_sets = sets  # a person must be in every set (approvals/eligibility.py)
    action.approvals_required = max(action.approvals_required, outcome.approvals_required)
    action.separation_of_duties = action.separation_of_duties or outcome.separation_of_duties
    action.edits_allowed = action.edits_allowed and (outcome.edits_allowed or not held)
    if held and outcome.hold_for is not None:
        deadline = now + outcome.hold_for
        if action.expires_at is None or deadline < action.expires_at:
            action.expires_at = deadline


def _why(outcome: pipeline.Outcome) -> str:
    return "; ".join(f"{r['name']}: {r['detail']}" for r in outcome.reasons) or "no reason given"


def _above_the_hold(
    action: Action, outcome: pipeline.Outcome
) -> tuple[list[tuple[Any, Any]], list[dict[str, Any]]]:
    """What the edited action is charged on, and the reasons it carries over: every limit
    the re-decision charges, less the hold limits that held the action as asked. Those are
    full whatever the params, and the approval is a person's yes above them, edited or not;
    they were not charged for the action as asked, nor are they now
    (docs/decisions/0030-an-edit-above-the-hold-limit-that-held-it.md). Their reasons go
    with the edited params' own: they hold it too."""
    held_by = {
        r.get("id"): r
        for r in action.reasons
        if r.get("kind") == "limit" and r.get("effect") == OnExceed.HOLD
    }
    charges = [(limit, amount) for limit, amount in outcome.charges if limit.pk not in held_by]
    above = [held_by[limit.pk] for limit, _ in outcome.charges if limit.pk in held_by]
    return charges, above


def action_edit(*, action: Action, params: Any) -> dict[str, Any] | None:
    """Apply a reviewer's edited ``params`` to the held, locked ``action`` (inside the
    vote's transaction), or raise ValidationError and change nothing. Returns what the
    audit event records about the edit, or None when the params are unchanged."""
    problems = params_problems(action.params, params)
    if problems:
        raise ValidationError({"params": problems})
    try:
        check_json(params)
    except UnsafeJsonError as exc:
        raise _refuse(f"The params {exc}.") from None
    if params == action.params:
        return None
    asked = action.params
    fixed = [key for key in action.resource_params or [] if params.get(key) != asked.get(key)]
    if fixed:
        raise _refuse(
            f"The resource {action.resource} is made of params.{', params.'.join(fixed)}, "
            "which cannot be edited: the edit is decided on this resource. To act on another, "
            "deny this action; the agent asks for that one."
        )
    if not action.edits_allowed:
        raise _refuse("The rule that holds this action does not allow edits.")
    now = timezone.now()
    outcome = _decided_again(action, params, now)
    invalid = sorted(
        {lim.sum_param for lim in outcome.limits.values() if limit_amount(lim, params) is None}
    )
    if invalid:  # nothing is over a limit: the value is not an amount a limit can count
        names = ", ".join(f"params.{name}" for name in invalid)
        raise _refuse(f"The edited {names} must be a number, zero or more: a limit adds it up.")
    if outcome.status not in (ActionStatus.ALLOWED, ActionStatus.PENDING):
        raise _refuse(f"The policy does not allow the edited action ({_why(outcome)}).")
    if any(reason["kind"] == "limit" for reason in outcome.reasons):
        raise _refuse(f"The edited action would go over a limit ({_why(outcome)}).")
    if outcome.status == ActionStatus.PENDING and not outcome.edits_allowed:
        raise _refuse("A rule that holds the edited action does not allow edits.")
    # The quota held for the asked params goes back; the edited params are charged. The
    # action's row is locked (the vote's transaction), so no expiry or cancellation
    # releases the old charge meanwhile; an error below rolls both back.
    charges, above = _above_the_hold(action, outcome)
    limits_release(action.limit_usage)
    charged = limits_charge(charges, now)
    over = [limit.name for limit, _ in charges if limit.pk not in charged]
    if over:
        raise _refuse(f"The edited action would go over the limit {', '.join(over)}.")
    before = {"params": action.params, "request_hash": action.request_hash, **_binding(action)}
    superseded = ApprovalVote.objects.filter(action=action, superseded=False).update(
        superseded=True
    )
    if action.requested_params is None:
        action.requested_params = action.params
    action.params = params
    action.request_hash = action_hash(action.action, action.resource, params)
    action.limit_usage = [
        {"limit_id": limit.pk, "counter_id": charged[limit.pk], "amount": str(amount)}
        for limit, amount in charges
    ]
    action.edit_reasons = [*outcome.reasons, *above]
    _bind_stricter(action, outcome, now)
    action.save(
        update_fields=[
            "params",
            "requested_params",
            "request_hash",
            "limit_usage",
            "edit_reasons",
            *BINDING,
        ]
    )
    return {
        "before": before,
        "after": {"params": params, "request_hash": action.request_hash, **_binding(action)},
        "superseded_votes": superseded,
        "decided_again": action.edit_reasons,
    }
