"""Plain data the API answers with: decisions, their reasons, and the agent's status."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Action statuses, as the API spells them."""

    ALLOWED = "allowed"
    DENIED = "denied"
    HALTED = "halted"
    DRY_RUN = "dry_run"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


# The only statuses in which the agent may run the action.
RUNNABLE = frozenset({Status.ALLOWED, Status.APPROVED})


def _datetime(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Reason:
    """One grant, rule, limit, kill switch or error that contributed to a decision."""

    kind: str
    name: str
    effect: str
    detail: str
    id: int | None = None

    @property
    def text(self) -> str:
        """In words: `name: detail` (`big refunds: condition ... was true`), or the name."""
        return f"{self.name}: {self.detail}" if self.detail else self.name

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reason:
        return cls(
            kind=str(data.get("kind", "")),
            name=str(data.get("name", "")),
            effect=str(data.get("effect", "")),
            detail=str(data.get("detail", "")),
            id=data.get("id"),
        )


@dataclass(frozen=True)
class Vote:
    """One reviewer's vote on a held action: who, approve or deny, why, when.

    `params` is set on an approval that edited the params (what it approved);
    `superseded` on an approval of params a later edit replaced."""

    username: str
    name: str
    vote: str  # "approve" | "deny"
    comment: str = ""
    at: datetime | None = None
    params: dict[str, Any] | None = None
    superseded: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vote:
        voter = data.get("voter") or {}
        return cls(
            username=str(voter.get("username", "")),
            name=str(voter.get("name") or voter.get("username") or ""),
            vote=str(data.get("vote", "")),
            comment=str(data.get("comment") or ""),
            at=_datetime(data.get("at")),
            params=data.get("params"),
            superseded=bool(data.get("superseded")),
        )


@dataclass(frozen=True)
class Decision:
    """Oversight's answer about one action.

    `ask` fills the decision fields; `wait`, `get` and `report` also fill the action's own
    fields (action, resource, params, votes, ...). `replayed` is True when an `ask` with an
    idempotency key seen before returned the first answer again; `lost_answer` when that
    first answer was to an ask of this client's that never received it (a lost connection,
    an ask that gave up), so no caller was told to run the action. `request_id` is the
    request id of the ask that recorded it.

    When a reviewer approved edited params, `edited` is True, `params` holds what may run
    and `requested_params` what was asked for. `comment` and `decided_by` are the deciding
    vote's (the deny, or the approval that completed the approvals).
    """

    id: str
    status: str
    reasons: list[Reason] = field(default_factory=list)
    policy_version: int = 0
    # The version of the agent's release it was decided under (None before any release).
    release: int | None = None
    expires_at: datetime | None = None
    action: str | None = None
    resource: str | None = None
    params: dict[str, Any] | None = None
    approvals_required: int = 0
    created_at: datetime | None = None
    finished_at: datetime | None = None
    # When the agent acknowledged its caller was told how it ended without running.
    acknowledged_at: datetime | None = None
    started_at: datetime | None = None  # an approved action's run claimed (`start`)
    error: str = ""  # the error reported (why it failed), or why it was cancelled
    reports_outcome: bool = False  # the agent said, asking, that it reports the outcome
    replayed: bool = False
    lost_answer: bool = False
    request_id: str = ""
    votes: list[Vote] = field(default_factory=list)
    edited: bool = False
    requested_params: dict[str, Any] | None = None

    @property
    def deciding_vote(self) -> Vote | None:
        """The deny that rejected the action, or the last approval that approved it."""
        current = [v for v in self.votes if not v.superseded]
        denies = [v for v in current if v.vote == "deny"]
        if denies:
            return denies[-1]
        approvals = [v for v in current if v.vote == "approve"]
        return approvals[-1] if approvals and self.status != Status.PENDING else None

    @property
    def comment(self) -> str:
        """The deciding reviewer's comment ("" when none, or not decided by a person)."""
        vote = self.deciding_vote
        return vote.comment if vote else ""

    @property
    def decided_by(self) -> str | None:
        """The deciding reviewer's name, or None when no person decided."""
        vote = self.deciding_vote
        return vote.name if vote else None

    @property
    def approval_note(self) -> str:
        """What the approval said beyond yes, as one sentence for the model that asked:
        the params the reviewer edited and her comment ("" when neither). Without it a
        model sees a refund of 120 for its 150 unexplained, and may well ask for the rest.
        The MCP proxy and every adapter add it to the tool's answer; an agent's own code
        shows it where it shows the answer (`guard`'s `approval_note`)."""
        asked, approved = self.requested_params, self.params
        edited = self.edited and asked is not None and approved is not None
        if not edited and not self.comment:
            return ""
        note = f"Oversight: {self.decided_by or 'a reviewer'} approved this call"
        if edited:
            changes = [
                f"{key}: {compact_json(asked.get(key))} -> {compact_json(value)}"
                for key, value in approved.items()
                if asked.get(key) != value
            ]
            note += f" with edited arguments ({'; '.join(changes)})"
        if self.comment:
            note += f", saying: {self.comment}"
        return note if note.endswith((".", "!", "?")) else f"{note}."

    @property
    def allowed(self) -> bool:
        """True when the agent may run the action now (allowed or approved)."""
        return self.status in RUNNABLE

    @property
    def pending(self) -> bool:
        return self.status == Status.PENDING

    @classmethod
    def from_json(
        cls, data: dict[str, Any], *, replayed: bool = False, lost_answer: bool = False
    ) -> Decision:
        return cls(
            id=str(data["id"]),
            status=str(data["status"]),
            reasons=[Reason.from_json(r) for r in data.get("reasons") or []],
            policy_version=int(data.get("policy_version") or 0),
            release=int(data["release"]) if data.get("release") is not None else None,
            expires_at=_datetime(data.get("expires_at")),
            action=data.get("action"),
            resource=data.get("resource"),
            params=data.get("params"),
            approvals_required=int(data.get("approvals_required") or 0),
            created_at=_datetime(data.get("created_at")),
            finished_at=_datetime(data.get("finished_at")),
            acknowledged_at=_datetime(data.get("acknowledged_at")),
            started_at=_datetime(data.get("started_at")),
            error=str(data.get("error") or ""),
            reports_outcome=data.get("reports_outcome") is True,
            replayed=replayed,
            lost_answer=lost_answer,
            request_id=str(data.get("request_id") or ""),
            votes=[Vote.from_json(v) for v in data.get("votes") or []],
            edited=bool(data.get("edited")),
            requested_params=data.get("requested_params"),
        )


@dataclass(frozen=True)
class Release:
    """What the agent should run with, from its release in force: its instructions,
    model and tools. Load them from here and the agent is rolled out and rolled back with
    its releases, with no deploy of its own."""

    version: int
    digest: str
    stage: str
    instructions: str
    model: str
    model_settings: dict[str, Any]
    tools: list[dict[str, Any]]
    notes: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Release:
        return cls(
            version=int(data["version"]),
            digest=data["digest"],
            stage=data.get("stage") or "stable",
            instructions=data.get("instructions") or "",
            model=data.get("model") or "",
            model_settings=dict(data.get("model_settings") or {}),
            tools=list(data.get("tools") or []),
            notes=data.get("notes") or "",
        )


@dataclass(frozen=True)
class AgentInfo:
    """What Oversight knows about the agent behind the token."""

    slug: str
    name: str
    team: str
    status: str
    environment: str
    halted: bool
    halted_reason: str
    policy_version: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentInfo:
        return cls(
            slug=data["slug"],
            name=data["name"],
            team=data["team"],
            status=data["status"],
            environment=data["environment"],
            halted=bool(data["halted"]),
            halted_reason=data.get("halted_reason") or "",
            policy_version=int(data["policy_version"]),
        )


@dataclass(frozen=True)
class ToolDefinition:
    """An MCP tool as a proxy saw it: the action it becomes and what it says it does."""

    server: str
    name: str
    action: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "name": self.name,
            "action": self.action,
            "description": self.description,
            "input_schema": self.input_schema,
        }


@dataclass(frozen=True)
class ToolStatus:
    """Oversight's view of one tool: may the agent use it, and is its definition the one
    pinned (`pinned`: first seen now or unchanged) or a changed one an owner must accept
    (`changed`: every call is held until then)."""

    name: str
    action: str
    granted: bool
    pin: str  # "pinned" | "changed"

    @property
    def changed(self) -> bool:
        return self.pin == "changed"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ToolStatus:
        return cls(
            name=str(data["name"]),
            action=str(data["action"]),
            granted=bool(data["granted"]),
            pin=str(data["pin"]),
        )


def compact_json(value: Any) -> str:
    """A value as compact JSON, keys sorted (`null`, `true`, `{"a":1}`)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
