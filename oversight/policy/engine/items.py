"""Grants, rules and limits in compiled form, with their reasons prepared in advance.

Everything a decision needs that does not depend on the request (matchers, compiled
conditions, reason texts) is built once here, when the policy version is compiled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .patterns import ResourceMatcher
from .types import Reason


@dataclass(frozen=True, slots=True)
class CompiledGrant:
    """A grant ready to match: its resource matcher, expiry and reason."""

    id: int
    matches_resource: ResourceMatcher | None  # None: every resource
    expires_at: datetime | None
    reason: Reason


@dataclass(frozen=True, slots=True)
class CompiledLimit:
    """A limit ready to match."""

    id: int
    matches_resource: ResourceMatcher | None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to evaluate.

    `broken` holds why the rule could not be compiled (bad condition, pattern or effect).
    A broken rule behaves as if its condition failed on every request: a forbid or hold
    fires, a permit never matches.
    """

    id: int
    name: str
    effect: str
    condition: str
    matches_resource: ResourceMatcher | None
    expression: Any | None  # compiled CEL; None with `broken` None means always true
    broken: str | None
    approvals: int
    expires_in: timedelta
    separation_of_duties: bool
    edits_allowed: bool
    approvers: Any
    fired_reason: Reason
    # Whether deciding if the rule fires means evaluating something (a field, not a
    # property: it is read for every candidate rule on every decision).
    needs_evaluation: bool

    def failed_reasons(self, error: str) -> tuple[Reason, ...]:
        """The reasons recorded when the condition fails: an error, and for a forbid or
        hold (which then counts as firing) the rule itself."""
        broken = self.broken is not None
        failing = "rule is broken" if broken else f"condition `{self.condition}` failed"
        if self.effect == "permit":
            consequence = "a permit that cannot be evaluated does not match"
        else:
            consequence = f"a {self.effect} that cannot be evaluated counts as firing"
        error_reason = Reason(
            "error", self.id, self.name, self.effect, f"{failing}: {error}; {consequence}"
        )
        if self.effect == "permit":
            return (error_reason,)
        rule_reason = Reason(
            "rule",
            self.id,
            self.name,
            self.effect,
            f"{failing}, so the {self.effect} fires (fail closed)",
        )
        return (rule_reason, error_reason)


def grant_reason(grant_id: int, action: str, resource: str, expires_at: datetime | None) -> Reason:
    """The reason a matching grant gives."""
    detail = f"granted {action} on {resource}"
    if expires_at is not None:
        detail += f" until {expires_at.isoformat()}"
    return Reason("grant", grant_id, f"{action} on {resource}", "allow", detail)


def fired_reason(
    rule_id: int, name: str, effect: str, action: str, resource: str, condition: str
) -> Reason:
    """The reason a rule gives when it fires normally."""
    if condition.strip():
        detail = f"condition `{condition}` was true"
    else:
        detail = f"matched {action} on {resource} (no condition)"
    return Reason("rule", rule_id, name, effect, detail)
