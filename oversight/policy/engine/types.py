"""The engine's plain-data inputs and outputs.

Everything here is a frozen dataclass of built-in values, so the Django side can build
specs from rows and store decisions without the engine knowing about either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

Effect = Literal["permit", "forbid", "hold"]
Outcome = Literal["allow", "deny", "hold"]
ReasonKind = Literal["grant", "rule", "default", "error"]


@dataclass(frozen=True, slots=True)
class GrantSpec:
    """Least privilege: the agent may do `action` on `resource` (until `expires_at`)."""

    id: int
    action: str
    resource: str = "*"
    # Aware datetime; a grant whose expiry is at or before the request time never matches.
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A boundary: permit, forbid or hold matching actions when `condition` (CEL) is true."""

    id: int
    name: str
    effect: Effect
    action: str = "*"
    resource: str = "*"
    condition: str = ""  # CEL source; "" means always true
    approvals: int = 1  # hold only: approvals needed
    expires_in: timedelta = timedelta(minutes=15)  # hold only: how long a reviewer has
    separation_of_duties: bool = False  # hold only: the agent's owner may not approve
    edits_allowed: bool = True  # hold only: a reviewer may approve edited params
    # hold only: who approves, as the caller describes it (JSON-like; the engine only
    # passes it on to the decision of a hold this rule fires for)
    approvers: Any = None


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """A blast-radius limit; the engine only says which limits an action falls under."""

    id: int
    name: str
    action: str = "*"
    resource: str = "*"


@dataclass(frozen=True, slots=True)
class Request:
    """One action an agent asks to take."""

    action: str
    resource: str
    params: Mapping[str, Any]  # JSON-like
    agent: Mapping[str, Any]  # e.g. {"slug": ..., "team": ..., "risk_tier": ..., "owner": ...}
    env: str  # "staging" | "production"
    time: datetime  # aware UTC
    undo: bool = False  # an undo of an earlier action (a compensation), asked by Oversight


@dataclass(frozen=True, slots=True)
class Reason:
    """One grant, rule, default or error that contributed to a decision."""

    kind: ReasonKind
    id: int | None
    name: str  # grant: "action on resource"; rule: its name; default: "no matching grant"
    effect: str  # "allow" for a grant, the rule's effect, "deny" for the default
    detail: str  # a human sentence; for errors, the error text


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer, with every grant or rule that decided it."""

    outcome: Outcome
    # All firing forbids; else all firing holds; else the matching grants and firing permits;
    # plus an error reason for every condition that failed while deciding. Sorted, so the
    # order of grants and rules in the policy never shows.
    reasons: tuple[Reason, ...]
    policy_version: int
    approvals_required: int  # hold: max over firing hold rules; else 0
    hold_expires_in: timedelta | None  # hold: min over firing hold rules; else None
    separation_of_duties: bool  # hold: any firing hold rule asks for it
    limit_ids: tuple[int, ...]  # limits whose patterns match; empty when the outcome is deny
    edits_allowed: bool = True  # hold: no firing hold rule forbids edits
    approver_sets: tuple[Any, ...] = ()  # hold: the firing hold rules' approvers, by rule
    # allow and hold: the ids of the grants that allow the action (a held action's
    # reasons name only its holds); empty when only a permit rule allows it, or on deny
    grant_ids: tuple[int, ...] = ()
