"""Actions agents asked to take, and the idempotency keys that make retries safe."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models

from oversight.agents.constants import Environment
from oversight.agents.models import Agent, AgentToken
from oversight.gateway.constants import ActionStatus

ALLOWING_EFFECTS = frozenset({"allow", "permit"})  # a grant's reason, a permit rule's


def deciding_reasons(reasons: Any) -> list[dict[str, Any]]:
    """Of an action's reasons (its ``reasons`` JSON), those that did not simply allow it:
    what held or refused it (a hold or forbid rule, a limit, a changed tool...). Where a
    person is told why an action is held, these are the reasons; the grant beside them
    only says the agent may ask at all."""
    return [
        r for r in reasons or () if isinstance(r, dict) and r.get("effect") not in ALLOWING_EFFECTS
    ]


class Action(models.Model):
    """One consequential action an agent asked to take, with the decision and its reasons.

    ``request_hash`` binds an approval to exactly this action, resource and params. A
    reviewer who approves with edited params changes ``params`` (and the hash) to what may
    run; ``requested_params`` then keeps what the agent asked for.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by action_agent_recent, whose first column it is.
    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="actions", db_index=False
    )
    token = models.ForeignKey(AgentToken, null=True, on_delete=models.SET_NULL, related_name="+")
    environment = models.CharField(max_length=12, choices=Environment.choices)
    action = models.CharField(max_length=200)
    resource = models.CharField(max_length=500)
    params = models.JSONField(default=dict)
    # What the agent asked for, when a reviewer approved edited params; None otherwise.
    requested_params = models.JSONField(null=True, blank=True)
    # The edited params decided again (approvals/edits.py): the reasons a direct ask for
    # them got, which bind the action beside ``reasons``; None while it is not edited.
    edit_reasons = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    reversible = models.BooleanField(default=False)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    session_id = models.CharField(max_length=100, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    status = models.CharField(max_length=12, choices=ActionStatus.choices)
    # The status as first decided; an idempotent retry is answered with this.
    decision = models.CharField(max_length=12, choices=ActionStatus.choices, default="")
    reasons = models.JSONField(default=list)
    policy_version = models.PositiveIntegerField(default=0)
    # The version of the agent's release it was decided under (with the agent, the
    # release's key: releases.Release is unique by agent and version); null before any.
    release_version = models.PositiveIntegerField(null=True, blank=True)
    # What the grant that allowed it says it is (read, reversible, irreversible, or
    # unknown when it says nothing; blank when nothing allowed it), and a reversible
    # grant's compensation as it was when decided (docs/rewind.md).
    reversibility = models.CharField(max_length=12, blank=True, default="")
    undo_contract = models.JSONField(null=True, blank=True)
    # A compensation (oversight/rewind): the action it undoes; while a compensator runs
    # it, until when it holds it; once reported, the outcome (undone, conflict,
    # not_reversible, failed, skipped) with the state it found and the state it left.
    compensates = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="compensations"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The W3C trace context the agent sent with it (its trace id links to the team's
    # tracing tool: accounts.Team.trace_url).
    traceparent = models.CharField(max_length=55, blank=True, default="")
    compensation_outcome = models.CharField(max_length=16, blank=True, default="")
    compensation_found = models.JSONField(null=True, blank=True)
    compensation_left = models.JSONField(null=True, blank=True)
    # In a shadow rollout, what the candidate release would have decided (never enforced):
    # its version, status (allowed, denied or pending) and reasons.
    shadow_version = models.PositiveIntegerField(null=True, blank=True)
    shadow_status = models.CharField(max_length=12, blank=True, default="")
    shadow_reasons = models.JSONField(null=True, blank=True)
    approvals_required = models.PositiveSmallIntegerField(default=0)
    separation_of_duties = models.BooleanField(default=False)
    # Held only: whether a reviewer may approve it with edited params (every hold rule
    # that held it allows edits).
    edits_allowed = models.BooleanField(default=True)
    # A snapshot of the approver sets of the hold rules that held it, as decided
    # ([{"rule", "kind", "role", "people"}]; empty: anyone with approve access). Read
    # only by oversight/approvals/eligibility.py.
    approver_sets = models.JSONField(default=list, blank=True)
    # Set once when nobody eligible could decide it, or nobody did by half its time:
    # admins may decide it from then on.
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_reason = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    request_hash = models.CharField(max_length=64)
    limit_usage = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the agent said its caller was told how the action ended without running (a
    # rejection, an expiry: POST /actions/<id>/acknowledge). oversight-mcp shows a held
    # call's refusal to the next identical call until then.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # When the agent claimed the run of an approved action (lifecycle.action_start): once,
    # so that two callers waiting on one approval do not both run it.
    started_at = models.DateTimeField(null=True, blank=True)
    # The agent said, when it asked, that it reports the outcome once the action has run
    # (the SDK's guard, oversight-mcp and the adapters do): an allowed one it never reports
    # may have run unseen, and is alerted on (monitoring/unreported.py). Set by the agent,
    # not derived: the API allows asking without reporting.
    reports_outcome = models.BooleanField(default=False, db_default=False)
    # The params the agent said its resource is made of (`charge` of
    # `stripe:charge/{charge}`: oversight-mcp's resource templates, the SDK's decorated
    # functions); None when it did not say. A reviewer may not edit them
    # (approvals/edits.py): the edit is decided on the action's resource, so another
    # value would run on a resource nobody decided on.
    resource_params = models.JSONField(null=True, blank=True)
    # The request id (X-Request-ID) of the ask that recorded it. A retry with the same
    # Idempotency-Key is answered with it, so a client that sent that ask and never had its
    # answer knows that nobody was told to run the action (oversight_sdk: a lost answer).
    request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["agent", "-created_at"], name="action_agent_recent"),
            models.Index(
                fields=["expires_at"],
                condition=models.Q(status="pending"),
                name="action_pending_expiry",
            ),
            # Approved actions the agent started and has not reported: few, and looked for
            # by monitoring every minute (monitoring/unreported.py).
            models.Index(
                fields=["started_at"],
                condition=models.Q(status="approved", started_at__isnull=False),
                name="action_started_unreported",
            ),
            # Allowed actions whose agent said it reports them and has not yet: as few,
            # and looked for alike.
            models.Index(
                fields=["created_at"],
                condition=models.Q(status="allowed", reports_outcome=True),
                name="action_allowed_unreported",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} on {self.resource} ({self.status})"

    @property
    def deciding_reasons(self) -> list[dict[str, Any]]:
        """What holds (or refused) it now: a changed tool definition an owner has
        accepted since holds it no more, so it is left out."""
        found = deciding_reasons(self.reasons)
        if any(r.get("kind") == "tool_pin" for r in found) and not self.awaits_tool_acceptance:
            return [r for r in found if r.get("kind") != "tool_pin"]
        return found

    @property
    def held_only_for_its_tool(self) -> bool:
        """Held for nothing but its MCP tool's changed definition: no one could approve
        it (an owner accepting the definition cancels it; it could be denied)."""
        found = deciding_reasons(self.reasons)
        return bool(found) and all(r.get("kind") == "tool_pin" for r in found)

    @property
    def edit_deciding_reasons(self) -> list[dict[str, Any]]:
        """Of the edited params' reasons, what would hold (or refuse) a direct ask for
        them ([] when it would be allowed, or when the action was not edited)."""
        return deciding_reasons(self.edit_reasons)

    @property
    def edit_added_reasons(self) -> list[dict[str, Any]]:
        """Those of ``edit_deciding_reasons`` that did not hold the params as asked: what
        the edit added (a stricter rule, say)."""
        held = {(r.get("kind"), r.get("name")) for r in self.deciding_reasons}
        return [r for r in self.edit_deciding_reasons if (r.get("kind"), r.get("name")) not in held]

    @property
    def awaits_tool_acceptance(self) -> bool:
        """A call of an MCP tool whose definition changed and no owner has accepted the
        new one yet (agents/tool_pins.py): it may be denied, not approved."""
        return self.action in (self.agent.changed_tools or ())


class IdempotencyKey(models.Model):
    """A client-chosen key: a retry with the same key and body gets the same answer."""

    # Indexed by idempotency_unique, whose first column it is.
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=200)
    body_hash = models.CharField(max_length=64)
    action = models.ForeignKey(Action, null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "key"], name="idempotency_unique")]

    def __str__(self) -> str:
        return self.key
