"""A person records how an action ended when its agent never said.

An action the agent was allowed to run, or an approved one whose run it claimed
(``started_at``), may have run; until its outcome is reported, the agent's identical
calls are told so and do not run it again (the SDK, oversight-mcp). When the agent never
reports (it crashed, its process was killed mid-call), one of the agent's owners checks
the system it acts on and records what they found: it ran and succeeded, it ran and
failed, or it did not run (cancelled: its quota given back, and the next identical call
is decided afresh). Audited with the person and what they checked.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import transaction
from django.utils import timezone

from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.constants import ActionStatus
from oversight.gateway.lifecycle import action_audit_target, actions_claim
from oversight.gateway.models import Action
from oversight.live import broadcasts
from oversight.live.publish import after_commit

NOT_RUN = "not_run"
# What a person may say happened, as the page offers it.
OUTCOMES = {
    ActionStatus.SUCCEEDED.value: "It ran and succeeded",
    ActionStatus.FAILED.value: "It ran and failed",
    NOT_RUN: "It did not run",
}
NOTE_MAX = 1000
# How long after the agent was allowed to run it (or started it) a person may say what
# happened: before, the agent may well be running it and about to report.
SETTLE_AFTER = dt.timedelta(seconds=60)


def outcome_unknown(action: Action) -> bool:
    """Whether ``action`` may have run without its outcome being reported."""
    if action.status == ActionStatus.ALLOWED:
        return True
    return action.status == ActionStatus.APPROVED and action.started_at is not None


def settleable_from(action: Action) -> dt.datetime:
    """When a person may record what happened to ``action`` (outcome_unknown)."""
    return (action.started_at or action.created_at) + SETTLE_AFTER


@transaction.atomic
def action_settle(*, actor: Actor, action: Action, outcome: str, note: str) -> Action:
    """Record ``outcome`` (a key of OUTCOMES) for ``action`` as read, with ``note`` (what
    the person checked). Claimed atomically: refused if the agent reported, or anything
    else changed the action, since it was read. Every refusal is a ValidationError (a
    person's form, not the agent API) and writes nothing."""
    note = note.replace("\r\n", "\n").strip()  # a browser sends a line break as two
    if outcome not in OUTCOMES:
        choices = "; ".join(OUTCOMES.values())
        raise ValidationError({"outcome": f"Choose what happened: {choices}."})
    if not note:
        raise ValidationError({"note": "Say what you checked, so that others can rely on it."})
    if len(note) > NOTE_MAX:
        raise ValidationError(
            {"note": f"Say it in at most {NOTE_MAX} characters (this is {len(note)})."}
        )
    if "\x00" in note:  # PostgreSQL's text refuses it
        raise ValidationError({"note": ProhibitNullCharactersValidator.message})
    if not outcome_unknown(action):
        raise ValidationError(
            f"Only an action that may have run without saying so can be settled; this one's "
            f"status is {action.get_status_display().lower()}.",
            code="not_settleable",
        )
    if timezone.now() < settleable_from(action):
        raise ValidationError(
            "The agent may still be running it: give it until "
            f"{settleable_from(action):%H:%M:%S} UTC to report.",
            code="too_soon",
        )
    ran = outcome != NOT_RUN
    status = outcome if ran else ActionStatus.CANCELLED
    now = timezone.now()
    error = "" if outcome == ActionStatus.SUCCEEDED else note
    as_read = Action.objects.filter(
        pk=action.pk, status=action.status, started_at=action.started_at
    )
    changes = {"status": status, "finished_at": now, "error": error}
    if not actions_claim(as_read, changes, give_back=not ran):
        raise ValidationError(
            "The action changed since you read it (its agent may have reported it): look again.",
            code="changed",
        )
    audit_record(
        actor=actor,
        verb=verbs.ACTION_REPORTED if ran else verbs.ACTION_CANCELLED,
        target=action_audit_target(action),
        agent_id=action.agent_id,
        before={"status": action.status},
        after={"status": status, "why": note, "recorded_by_a_person": OUTCOMES[outcome]},
    )
    after_commit(lambda: broadcasts.action_changed(action.pk, created=False))
    action.refresh_from_db()
    return action
