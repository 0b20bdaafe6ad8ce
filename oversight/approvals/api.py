"""The approvals API for people: what a person may decide, and her vote.

Authenticated with a personal API token (accounts/personal_tokens.py), never an agent's.
It is the browser's approval flow over HTTP: the same selector lists the queue and the
same service (``approval_vote``) records a vote, with the same object permissions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.security import HttpBearer
from pydantic import field_validator

from oversight.accounts.personal_tokens import person_authenticate
from oversight.approvals import selectors
from oversight.approvals.models import MAX_COMMENT, Vote
from oversight.approvals.services import approval_vote
from oversight.gateway.json_safety import NO_NUL, OptionalStorableObject, check_json
from oversight.gateway.schemas import ActionStatusName, ErrorOut, ReasonOut, VoteOut


class PersonBearer(HttpBearer):
    """A person's personal API token (``ovp_...``); an agent's token is unknown here."""

    def authenticate(self, request: HttpRequest, token: str) -> Any | None:
        user = person_authenticate(token)
        if user is not None:
            request.user = user
        return user


class AgentRef(Schema):
    slug: str
    name: str
    team: str
    risk_tier: str


class ApprovalOut(Schema):
    id: uuid.UUID
    status: ActionStatusName
    agent: AgentRef
    action: str
    resource: str
    params: dict[str, Any]
    edited: bool
    requested_params: dict[str, Any] | None = None
    request_hash: str = Field(
        description=(
            "The version of the action shown here (a hash of action, resource and params; "
            "an edit changes it): an approval sends it back."
        )
    )
    reason: str = Field("", description="Why the agent wants to do this.")
    reasons: list[ReasonOut] = Field(description="Why it is held.")
    edit_reasons: list[ReasonOut] | None = Field(
        None,
        description=(
            "When a reviewer edited the params: the reasons a direct ask for the edited "
            "params got. They bind the action beside `reasons` (the stricter of both). "
            "None when not edited."
        ),
    )
    approvals_required: int
    approvals: int = Field(description="Current approvals (superseded ones not counted).")
    separation_of_duties: bool = Field(description="The agent's owner may not approve.")
    edits_allowed: bool = Field(description="Whether an approval may edit the params.")
    expires_at: datetime | None = None
    created_at: datetime
    votes: list[VoteOut]


class VoteIn(Schema):
    vote: Literal["approve", "deny"]
    comment: str = Field(
        "",
        max_length=MAX_COMMENT,
        description="Why; required to deny. The agent receives it.",
        json_schema_extra={"pattern": NO_NUL},
    )
    params: OptionalStorableObject = Field(
        None,
        description=(
            "Approve only: the params to approve instead of those asked for (same keys, "
            "same types). The action is decided again with them; see docs/api.md."
        ),
    )
    request_hash: str | None = Field(
        None,
        max_length=64,
        description=(
            "Required to approve: the action's request_hash as you were shown it (GET "
            "/api/v1/approvals). An approval of an action edited since is refused (409 "
            "action_changed); one that is not a request hash (64 hexadecimal digits), 422. "
            "A deny may leave it out."
        ),
        json_schema_extra={"pattern": "^[0-9a-f]{64}$"},
    )

    @field_validator("comment", "params", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return check_json(value)


_ERRORS = {code: ErrorOut for code in (401, 403, 404, 409, 422, 500, 503)}

router = Router(auth=PersonBearer(), tags=["approvals"])


def approval_body(action: Any) -> dict[str, object]:
    from oversight.gateway.api import action_body  # the agent API's own rendering

    agent = action.agent
    votes = list(action.votes.all())
    return {
        **action_body(action),
        "agent": {
            "slug": agent.slug,
            "name": agent.name,
            "team": agent.team.slug,
            "risk_tier": agent.risk_tier,
        },
        "request_hash": action.request_hash,
        "reason": action.reason,
        "edit_reasons": action.edit_reasons,
        "approvals": sum(1 for v in votes if v.vote == Vote.APPROVE and not v.superseded),
        "separation_of_duties": action.separation_of_duties,
        "edits_allowed": action.edits_allowed,
    }


@router.get(
    "",
    response={200: list[ApprovalOut], **_ERRORS},
    summary="Held actions you may decide",
    operation_id="list_approvals",
)
def list_approvals(request: HttpRequest) -> list[dict[str, object]]:
    """Exactly the browser's approval queue for the token's person, most urgent first:
    not the actions she voted on (they wait for others) until an edit supersedes her vote."""
    return [approval_body(action) for action in selectors.approval_queue(user=request.auth)]


@router.post(
    "/{action_id}/vote",
    response={200: ApprovalOut, **_ERRORS},
    summary="Approve (optionally with edited params) or deny a held action",
    operation_id="vote_on_approval",
)
def vote_on_approval(request: HttpRequest, action_id: uuid.UUID, payload: VoteIn) -> dict[str, Any]:
    """One vote per person. 404: no such action among those you may see; 403: you may not
    decide it; 409: it was decided already, you voted, or it was edited since you were
    shown it (``request_hash``); 422: bad input (nothing changed)."""
    user = request.auth
    action = selectors.action_get(user=user, action_id=action_id)
    approval_vote(
        user=user,
        action_id=action.pk,
        vote=payload.vote,
        comment=payload.comment,
        params=payload.params,
        seen=payload.request_hash or "",  # never None: a person's approval says what it saw
    )
    return approval_body(selectors.action_with_votes(action_id=action.pk))
