"""Input and output schemas of the agent API, version 1."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import field_validator

from oversight.gateway.json_safety import check_json
from oversight.policy.engine import is_action_name

ActionStatusName = Literal[
    "allowed",
    "denied",
    "halted",
    "dry_run",
    "pending",
    "approved",
    "rejected",
    "expired",
    "cancelled",
    "succeeded",
    "failed",
    "rolled_back",
]


class ActionIn(Schema):
    action: str = Field(..., min_length=1, max_length=200, examples=["payments.refund"])
    resource: str = Field(..., min_length=1, max_length=500, examples=["stripe:charge/ch_123"])
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field("", max_length=2000, description="Why the agent wants to do this.")
    reversible: bool = False
    before: Any = Field(None, description="The state of the resource before the action.")
    session_id: str = Field("", max_length=100)
    parent_id: uuid.UUID | None = None

    @field_validator("params", "before", "reason", "session_id", "resource", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return check_json(value)

    @field_validator("action")
    @classmethod
    def _action_name(cls, value: str) -> str:
        if not is_action_name(value):
            raise ValueError("must be dot-separated lower-case words, e.g. payments.refund")
        return value

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        if value != value.strip() or any(ch.isspace() for ch in value):
            raise ValueError("must not contain whitespace")
        return value


class ReasonOut(Schema):
    kind: str
    id: int | None = None
    name: str
    effect: str
    detail: str


class DecisionOut(Schema):
    id: uuid.UUID
    status: ActionStatusName
    reasons: list[ReasonOut]
    policy_version: int
    expires_at: datetime | None = None


class ActionOut(DecisionOut):
    action: str
    resource: str
    params: dict[str, Any]
    approvals_required: int
    created_at: datetime
    finished_at: datetime | None = None


class ResultIn(Schema):
    outcome: Literal["succeeded", "failed"]
    after: Any = Field(None, description="The state of the resource after the action.")
    error: str = Field("", max_length=5000)
    action: str | None = Field(None, max_length=200, description="If given, must match.")
    resource: str | None = Field(None, max_length=500, description="If given, must match.")
    params: dict[str, Any] | None = Field(None, description="If given, must match.")

    @field_validator("after", "error", "params", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return check_json(value)


class AgentOut(Schema):
    slug: str
    name: str
    team: str
    status: Literal["active", "paused", "retired"]
    environment: Literal["staging", "production"]
    halted: bool
    halted_reason: str = ""
    policy_version: int


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] = Field(default_factory=dict)


class ErrorOut(Schema):
    error: ErrorBody
