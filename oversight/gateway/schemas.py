"""Input and output schemas of the agent API, version 1."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from oversight.gateway.constants import MAX_BODY_BYTES
from oversight.gateway.json_safety import (
    NO_NUL,
    OptionalStorableObject,
    StorableJson,
    StorableObject,
    check_json,
)
from oversight.policy.engine import is_action_name, is_resource

# W3C trace context, version 00; all-zero trace and span ids are invalid (the spec).
TRACEPARENT = r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"
# What the validators below and the API's edges enforce, said in the OpenAPI document so
# that clients (and schemathesis) know it; tests/gateway_live/test_openapi_contract.py
# checks that the document and the validators agree.
_BODY_LIMIT = f"The request body is at most {MAX_BODY_BYTES} bytes (else 413)."
ACTION_NAME = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$"  # as policy.engine.is_action_name


def _action_named(value: str, example: str) -> str:
    """An action name as the policy engine reads it, or the error naming an example."""
    if not is_action_name(value):
        raise ValueError(f"must be dot-separated lower-case words, e.g. {example}")
    return value


# No whitespace (Python's str.isspace, character by character) and no NUL.
RESOURCE = r"^[^\x00\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"


class Body(BaseModel):
    """A request or answer body the API reads from JSON or writes from a dict, never from
    a model instance: a plain pydantic model. (ninja's Schema reads its input through an
    attribute getter, for ORM objects, which made validating a decision's body and answer
    several times slower: about 50 µs of a decision's CPU.)"""


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


class ActionIn(Body):
    model_config = ConfigDict(
        json_schema_extra={"description": f"An action the agent asks to take. {_BODY_LIMIT}"}
    )

    action: str = Field(
        ...,
        min_length=1,
        max_length=200,
        examples=["payments.refund"],
        description="Dot-separated words of lower-case letters, digits, _ and -.",
        json_schema_extra={"pattern": ACTION_NAME},
    )
    resource: str = Field(
        ...,
        min_length=1,
        max_length=500,
        examples=["stripe:charge/ch_123"],
        description="No whitespace.",
        json_schema_extra={"pattern": RESOURCE},
    )
    params: StorableObject = Field(default_factory=dict)
    reason: str = Field(
        "",
        max_length=2000,
        description="Why the agent wants to do this.",
        json_schema_extra={"pattern": NO_NUL},
    )
    reversible: bool = False
    before: StorableJson = Field(None, description="The state of the resource before the action.")
    session_id: str = Field(
        "",
        max_length=100,
        description=(
            "The agent's session (a conversation, a run): a canary assigns sessions, and "
            "an action's session can be undone as a whole. Not part of what an "
            "Idempotency-Key binds."
        ),
        json_schema_extra={"pattern": NO_NUL},
    )
    parent_id: uuid.UUID | None = None
    traceparent: str = Field(
        "",
        max_length=55,
        description=(
            "The W3C trace context of the agent's current span (`00-<trace id>-<span id>-"
            "<flags>`), so the action can be found in the team's tracing tool."
        ),
        json_schema_extra={"pattern": TRACEPARENT},
    )
    reports_outcome: bool = Field(
        False,
        description=(
            "Whether the agent reports the action's outcome once it has run (`POST "
            "/actions/{id}/result`), as the SDK's guard, oversight-mcp and the adapters do. "
            "An allowed action so marked and not reported within 10 minutes may have run "
            "unseen: its agent's people are alerted."
        ),
    )

    resource_params: list[str] | None = Field(
        None,
        max_length=100,
        description=(
            "The keys of `params` whose values the resource is made of (`charge` for "
            "`stripe:charge/{charge}`), as oversight-mcp and the SDK's decorated functions "
            "say. A reviewer may not edit them: an edit is decided on the action's resource, "
            "so another value would act on a resource nobody decided on. A name that is not "
            "a key of `params` locks nothing and is not kept."
        ),
        json_schema_extra={"uniqueItems": True},
    )
    release: int | None = Field(
        None,
        ge=1,
        le=2_147_483_647,
        description=(
            "The version of the agent's release this session runs, as `GET "
            "/agent/release` answered it (the SDK sends it for a session whose release it "
            "loaded). During a canary a session keeps the release it loaded, stable or "
            "candidate, though the share moved past its bucket since; any other version, "
            "and any other stage, is assigned as if none were said. The answer's `release` "
            "is the version that decided."
        ),
    )

    @field_validator("release", mode="before")
    @classmethod
    def _release(cls, value: Any) -> Any:
        # A JSON integer (2, or 2.0 as JSON Schema counts it): not "2", nor true.
        if isinstance(value, str | bool):
            raise ValueError("release: expected a version number, such as 2")
        return value

    @field_validator("traceparent")
    @classmethod
    def _traceparent(cls, value: str) -> str:
        if value and not re.fullmatch(TRACEPARENT, value):  # the pattern the schema states
            raise ValueError(
                "traceparent: expected W3C trace context, 00-<32 hex>-<16 hex>-<2 hex>"
                " (trace and span ids not all zero)"
            )
        return value

    @field_validator("params", "before", "reason", "session_id", "resource", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return check_json(value)

    @field_validator("action")
    @classmethod
    def _action_name(cls, value: str) -> str:
        return _action_named(value, "payments.refund")

    @field_validator("resource_params")
    @classmethod
    def _named_once(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):  # uniqueItems, as said
            raise ValueError("resource_params: a key is named twice")
        return value

    @model_validator(mode="after")
    def _resource_params_of_params(self) -> ActionIn:
        """Only keys of params are kept: another name locks nothing (an edit has the
        asked params' keys, approvals/edits.py), and the action shows what is locked."""
        if self.resource_params is not None:
            self.resource_params = [name for name in self.resource_params if name in self.params]
        return self

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        if not is_resource(value):  # the policy engine's own test (it denies the rest)
            raise ValueError("must not contain whitespace")
        return value


class ReasonOut(Body):
    kind: str
    id: int | None = Field(
        None,
        description=(
            "The grant, rule or limit's id; null when no row holds it any more, as for a"
            " rule that exists only in a release being rolled out (a canary or shadow"
            " candidate's, or a rolled-back release's): name it by `name`."
        ),
    )
    name: str
    effect: str
    detail: str


class DecisionOut(Body):
    id: uuid.UUID
    status: ActionStatusName
    reasons: list[ReasonOut]
    policy_version: int
    release: int | None = Field(
        None, description="The version of the agent's release it was decided under."
    )
    reversibility: Literal["read", "reversible", "irreversible", "unknown"] | None = Field(
        None,
        description=(
            "What the grant that allowed it says it is (`unknown` when it says nothing;"
            " null when nothing allowed it). A reversible action can be undone from its page."
        ),
    )
    expires_at: datetime | None = None
    request_id: str = Field(
        "",
        description=(
            "The request id (`X-Request-ID`) of the ask that recorded it: a retry with the"
            " same Idempotency-Key is answered with the first ask's, so a client that never"
            " had that ask's answer knows that nobody was told to run it."
        ),
    )


class VoterOut(Body):
    username: str
    name: str = Field(description="The person's full name; the username when none is set.")


class VoteOut(Body):
    voter: VoterOut
    vote: Literal["approve", "deny"]
    comment: str = Field("", description="Why; always given with a deny.")
    at: datetime
    params: dict[str, Any] | None = Field(
        None, description="The params this approval approved, when it edited them."
    )
    superseded: bool = Field(
        False, description="True for an approval of params a later edit replaced."
    )


class ActionOut(DecisionOut):
    action: str
    resource: str
    params: dict[str, Any] = Field(
        description="What may run: the params asked for, or as a reviewer edited them."
    )
    edited: bool = Field(False, description="True when a reviewer approved edited params.")
    requested_params: dict[str, Any] | None = Field(
        None, description="The params the agent asked for, when a reviewer edited them."
    )
    approvals_required: int
    votes: list[VoteOut] = Field(
        default_factory=list, description="Reviewers' votes, oldest first."
    )
    created_at: datetime
    finished_at: datetime | None = None
    acknowledged_at: datetime | None = Field(
        None,
        description="When the agent said its caller was told how it ended without running.",
    )
    started_at: datetime | None = Field(
        None, description="When the agent claimed the run of this approved action."
    )
    error: str = Field(
        "",
        description=(
            "The error reported with its outcome (why it failed), or why it was cancelled (by "
            "the agent, a kill switch, a rewind, or an owner who found it did not run)."
        ),
    )
    reports_outcome: bool = Field(
        False, description="Whether the agent said, when it asked, that it reports the outcome."
    )
    resource_params: list[str] | None = Field(
        None,
        description="The params the agent said the resource is made of (not editable).",
    )


class ResultIn(Body):
    model_config = ConfigDict(
        json_schema_extra={"description": f"What happened when the agent acted. {_BODY_LIMIT}"}
    )

    outcome: Literal["succeeded", "failed"]
    after: StorableJson = Field(None, description="The state of the resource after the action.")
    error: str = Field("", max_length=5000, json_schema_extra={"pattern": NO_NUL})
    action: str | None = Field(None, max_length=200, description="If given, must match.")
    resource: str | None = Field(None, max_length=500, description="If given, must match.")
    params: OptionalStorableObject = Field(None, description="If given, must match.")

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


class ReleaseOut(Schema):
    version: int = Field(description="The release's number for this agent: 1, 2, 3...")
    digest: str = Field(description="SHA-256 of the release's canonical content.")
    stage: Literal["stable", "staging", "canary"] = Field(
        description=(
            "Why this session gets it: `stable`, the release in force; `staging`, a rollout's"
            " candidate for a staging token; `canary`, the candidate for this session in a"
            " canary (sticky: the same session id gets the same release through the stage)."
        )
    )
    created_at: datetime
    notes: str = ""
    instructions: str = ""
    model: str = Field("", description="The model's name.")
    model_settings: dict[str, Any] = Field(default_factory=dict)
    tools: list[dict[str, Any]] = Field(
        default_factory=list, description="Each tool's name, description and input schema."
    )


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] = Field(default_factory=dict)


class ErrorOut(Schema):
    error: ErrorBody


# What every agent-API operation may answer besides its success (ErrorOut's shape).
API_ERRORS: dict[int, type[ErrorOut]] = {
    code: ErrorOut for code in (400, 401, 403, 404, 409, 413, 422, 500, 503)
}


class ToolIn(Schema):
    server: str = Field(..., min_length=1, max_length=100, json_schema_extra={"pattern": NO_NUL})
    name: str = Field(..., min_length=1, max_length=200, json_schema_extra={"pattern": NO_NUL})
    action: str = Field(
        ...,
        min_length=1,
        max_length=200,
        description="The action a call to this tool is asked as (mcp.<server>.<tool>).",
        json_schema_extra={"pattern": ACTION_NAME},
    )
    description: str = Field("", max_length=20000, json_schema_extra={"pattern": NO_NUL})
    input_schema: StorableObject = Field(default_factory=dict)

    @field_validator("server", "name", "description", "input_schema", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return check_json(value)

    @field_validator("action")
    @classmethod
    def _action_name(cls, value: str) -> str:
        return _action_named(value, "mcp.payments.refund")


class ToolsIn(Schema):
    model_config = ConfigDict(
        json_schema_extra={"description": f"The tools an MCP proxy lists. {_BODY_LIMIT}"}
    )

    tools: list[ToolIn] = Field(..., max_length=500)


class ToolOut(Schema):
    name: str
    action: str
    granted: bool = Field(
        description=(
            "A grant or permit covers the action on some resource, and no forbid rule "
            "refuses it on every resource unconditionally."
        )
    )
    pin: Literal["pinned", "changed"] = Field(
        description="`changed`: the definition differs from the pinned one; every call is "
        "held until an owner accepts it."
    )


class ToolsOut(Schema):
    tools: list[ToolOut]
