"""Plain data the API answers with: decisions, their reasons, and the agent's status."""

from __future__ import annotations

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
class Decision:
    """Oversight's answer about one action.

    `ask` fills the decision fields; `wait`, `get` and `report` also fill the action's own
    fields (action, resource, params, ...). `replayed` is True when an `ask` with an
    idempotency key seen before returned the first answer again.
    """

    id: str
    status: str
    reasons: list[Reason] = field(default_factory=list)
    policy_version: int = 0
    expires_at: datetime | None = None
    action: str | None = None
    resource: str | None = None
    params: dict[str, Any] | None = None
    approvals_required: int = 0
    created_at: datetime | None = None
    finished_at: datetime | None = None
    replayed: bool = False

    @property
    def allowed(self) -> bool:
        """True when the agent may run the action now (allowed or approved)."""
        return self.status in RUNNABLE

    @property
    def pending(self) -> bool:
        return self.status == Status.PENDING

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool = False) -> Decision:
        return cls(
            id=str(data["id"]),
            status=str(data["status"]),
            reasons=[Reason.from_json(r) for r in data.get("reasons") or []],
            policy_version=int(data.get("policy_version") or 0),
            expires_at=_datetime(data.get("expires_at")),
            action=data.get("action"),
            resource=data.get("resource"),
            params=data.get("params"),
            approvals_required=int(data.get("approvals_required") or 0),
            created_at=_datetime(data.get("created_at")),
            finished_at=_datetime(data.get("finished_at")),
            replayed=replayed,
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
