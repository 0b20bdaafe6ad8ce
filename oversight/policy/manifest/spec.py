"""Parse a manifest into plain specs, naming the exact place of every problem."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from oversight.policy.engine import ConditionError, check_condition, check_pattern
from oversight.policy.manifest.durations import parse_duration


class ManifestError(ValueError):
    """A problem in the manifest, with where it is (e.g. agents[0].rules[1].when)."""


@dataclass(frozen=True)
class GrantSpec:
    action: str
    resource: str = "*"
    expires_at: dt.datetime | None = None
    # The reversibility contract (docs/rewind.md): "" says nothing.
    reversibility: str = ""
    undo_action: str = ""
    undo_params: dict[str, str] = field(default_factory=dict)
    undo_window_seconds: int | None = None

    def fields(self) -> dict[str, Any]:
        """The grant's fields besides its action and resource, as the model names them."""
        return {
            "expires_at": self.expires_at,
            "reversibility": self.reversibility,
            "undo_action": self.undo_action,
            "undo_params": self.undo_params,
            "undo_window_seconds": self.undo_window_seconds,
        }


@dataclass(frozen=True)
class RuleSpec:
    name: str
    effect: str
    action: str = "*"
    resource: str = "*"
    condition: str = ""
    approvals: int = 1
    expires_in_seconds: int = 900
    separation_of_duties: bool = False
    edits_allowed: bool = True
    approvers: str = "access"  # access | team_reviewers | role | people
    approver_role: str = ""
    approver_people: tuple[str, ...] = ()  # usernames


@dataclass(frozen=True)
class LimitSpec:
    name: str
    window_seconds: int
    action: str = "*"
    resource: str = "*"
    max_count: int | None = None
    sum_param: str = ""
    max_sum: Decimal | None = None
    on_exceed: str = "deny"


@dataclass(frozen=True)
class AgentSpec:
    slug: str
    name: str
    owner: str
    team: str
    purpose: str
    review_every_days: int = 90
    environments: tuple[str, ...] = ("staging", "production")
    risk_tier: str = "medium"
    # The agent's config, in its release (docs/releases.md); None: left as it is.
    config: dict[str, Any] | None = None
    grants: tuple[GrantSpec, ...] = ()
    rules: tuple[RuleSpec, ...] = ()
    limits: tuple[LimitSpec, ...] = ()


@dataclass(frozen=True)
class TeamSpec:
    name: str
    description: str | None = None  # None: left as it is
    limits: tuple[LimitSpec, ...] = ()
    reviewers: tuple[str, ...] | None = None  # usernames; None: left as they are


@dataclass(frozen=True)
class Manifest:
    teams: tuple[TeamSpec, ...] = ()
    agents: tuple[AgentSpec, ...] = ()
    limits: tuple[LimitSpec, ...] = field(default_factory=tuple)  # on everyone


class _Reader:
    """Typed access to one mapping of the manifest, with its path for error messages."""

    def __init__(self, data: Any, path: str, allowed: set[str]) -> None:
        if not isinstance(data, dict):
            raise ManifestError(f"{path or 'the manifest'}: expected a mapping")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ManifestError(
                f"{path}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
            )
        self.data, self.path = data, path

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise ManifestError(f"{self.path}.{key}: required")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ManifestError(f"{self.path}.{key}: expected text")
        return str(value)

    def integer(self, key: str, default: int | None = None, minimum: int = 1) -> int | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ManifestError(f"{self.path}.{key}: expected a whole number of at least {minimum}")
        return value

    def duration(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if value is None:
            raise ManifestError(f"{self.path}.{key}: required")
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ManifestError(f"{self.path}.{key}: {exc}") from None

    def items(self, key: str) -> list[tuple[str, Any]]:
        value = self.data.get(key)
        if value is None:
            value = []  # left out, or given no value
        prefix = f"{self.path}." if self.path else ""
        if not isinstance(value, list):  # a mapping ({}) or a word is not a list of entries
            raise ManifestError(f"{prefix}{key}: expected a list")
        return [(f"{prefix}{key}[{i}]", item) for i, item in enumerate(value)]

    def pattern(self, key: str, kind: str) -> str:
        value = self.text(key, "*")
        try:
            check_pattern(value, kind=kind)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ManifestError(f"{self.path}.{key}: {exc}") from None
        return value


_CLASSES = ("read", "reversible", "irreversible")


def _undo(path: str, data: Any) -> dict[str, Any]:
    r = _Reader(data, path, {"action", "params", "window"})
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ManifestError(f"{path}.params: expected a mapping of name to CEL expression")
    return {
        "undo_action": r.text("action"),
        "undo_params": {str(name): str(source) for name, source in params.items()},
        "undo_window_seconds": r.duration("window", 7 * 24 * 3600),
    }


def _grant(path: str, data: Any) -> GrantSpec:
    r = _Reader(data, path, {"action", "resource", "expires_at", "reversibility", "undo"})
    reversibility = r.text("reversibility", "")
    if reversibility not in ("", *_CLASSES):
        raise ManifestError(f"{path}.reversibility: expected one of {', '.join(_CLASSES)}")
    undo = _undo(f"{path}.undo", data["undo"]) if data.get("undo") is not None else {}
    if undo and reversibility != "reversible":
        raise ManifestError(f"{path}.undo: only a reversible grant has an undo")
    expires = data.get("expires_at")
    if expires is not None and not isinstance(expires, dt.datetime):
        try:
            expires = dt.datetime.fromisoformat(str(expires))
        except ValueError:
            raise ManifestError(f"{path}.expires_at: expected an ISO date-time") from None
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    return GrantSpec(
        r.pattern("action", "action"),
        r.pattern("resource", "resource"),
        expires,
        reversibility=reversibility,
        **undo,
    )


# What only a hold rule says (who approves, how many, by when): Rule.HOLD_ONLY_FIELDS.
_HOLD_ONLY_KEYS = {"approvals", "expires_in", "separation_of_duties", "edits_allowed", "approvers"}


def _rule(path: str, data: Any) -> RuleSpec:
    allowed = {
        "name",
        "effect",
        "action",
        "resource",
        "when",
        "approvals",
        "expires_in",
        "separation_of_duties",
        "edits_allowed",
        "approvers",
    }
    r = _Reader(data, path, allowed)
    effect = r.text("effect")
    if effect not in ("permit", "forbid", "hold"):
        raise ManifestError(f"{path}.effect: must be permit, forbid or hold, not {effect!r}")
    hold_only = sorted(_HOLD_ONLY_KEYS & set(data)) if effect != "hold" else []
    if hold_only:  # kept nowhere and left out of the export, it would read as a change
        raise ManifestError(f"{path}.{hold_only[0]}: only a hold rule has it, not a {effect}")
    condition = r.text("when", "")
    if condition:
        try:
            check_condition(condition)
        except ConditionError as exc:
            raise ManifestError(f"{path}.when: {exc}") from None
    sod = data.get("separation_of_duties", False)
    if not isinstance(sod, bool):
        raise ManifestError(f"{path}.separation_of_duties: expected true or false")
    edits_allowed = data.get("edits_allowed", True)
    if not isinstance(edits_allowed, bool):
        raise ManifestError(f"{path}.edits_allowed: expected true or false")
    return RuleSpec(
        name=r.text("name"),
        effect=effect,
        action=r.pattern("action", "action"),
        resource=r.pattern("resource", "resource"),
        condition=condition,
        approvals=r.integer("approvals", 1) or 1,
        expires_in_seconds=r.duration("expires_in", 900),
        separation_of_duties=sod,
        edits_allowed=edits_allowed,
        **_approvers(f"{path}.approvers", data.get("approvers", "access")),
    )


_APPROVERS_HELP = (
    "expected access, team_reviewers, {role: admin|owner|reviewer|auditor} "
    "or {people: [username, ...]}"
)


def _approvers(path: str, value: Any) -> dict[str, Any]:
    """``approvers:`` of a hold rule: who approves (docs/manifest.md)."""
    if value in ("access", "team_reviewers"):
        return {"approvers": value}
    if not isinstance(value, dict) or len(value) != 1:
        raise ManifestError(f"{path}: {_APPROVERS_HELP}")
    if "role" in value:
        if value["role"] not in ("admin", "owner", "reviewer", "auditor"):
            raise ManifestError(f"{path}.role: {_APPROVERS_HELP}")
        return {"approvers": "role", "approver_role": value["role"]}
    people = value.get("people")
    if not isinstance(people, list) or not people or not all(isinstance(p, str) for p in people):
        raise ManifestError(f"{path}: {_APPROVERS_HELP}")
    return {"approvers": "people", "approver_people": tuple(sorted(set(people)))}


def _usernames(path: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ManifestError(f"{path}: expected a list of usernames")
    return tuple(sorted(set(value)))


def _limit(path: str, data: Any) -> LimitSpec:
    allowed = {"name", "action", "resource", "window", "max_count", "max_sum", "on_exceed"}
    r = _Reader(data, path, allowed)
    sum_param, max_sum = "", None
    if data.get("max_sum") is not None:
        s = _Reader(data["max_sum"], f"{path}.max_sum", {"param", "value"})
        sum_param = s.text("param")
        try:
            max_sum = Decimal(str(s.data.get("value")))
        except InvalidOperation:
            raise ManifestError(f"{path}.max_sum.value: expected a number") from None
        if not max_sum.is_finite() or max_sum <= 0:
            raise ManifestError(f"{path}.max_sum.value: expected a positive number")
    max_count = r.integer("max_count", minimum=0)  # 0: every matching action is over
    if max_count is None and max_sum is None:
        raise ManifestError(f"{path}: give max_count, max_sum or both")
    on_exceed = r.text("on_exceed", "deny")
    if on_exceed not in ("deny", "hold", "pause"):
        raise ManifestError(f"{path}.on_exceed: must be deny, hold or pause")
    return LimitSpec(
        name=r.text("name"),
        window_seconds=r.duration("window"),
        action=r.pattern("action", "action"),
        resource=r.pattern("resource", "resource"),
        max_count=max_count,
        sum_param=sum_param,
        max_sum=max_sum,
        on_exceed=on_exceed,
    )


def _unique(specs: list[Any], key: str, path: str) -> tuple[Any, ...]:
    seen: set[Any] = set()
    for spec in specs:
        value = getattr(spec, key) if key != "grant" else (spec.action, spec.resource)
        if value in seen:
            raise ManifestError(f"{path}: {value!r} appears twice")
        seen.add(value)
    return tuple(specs)


# The manifest's names for the agent's config fields (the model's field names).
CONFIG_KEYS = {
    "instructions": "instructions",
    "model": "model_name",
    "model_settings": "model_settings",
    "tools": "tools",
}


def _config(path: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The config keys the manifest gives, by model field; None when it gives none. The
    agent's own validation checks the values (apply names the key)."""
    given = {field: data[key] for key, field in CONFIG_KEYS.items() if key in data}
    if "instructions" in given and not isinstance(given["instructions"], str):
        raise ManifestError(f"{path}.instructions: text")
    if "model_name" in given and not isinstance(given["model_name"], str):
        raise ManifestError(f"{path}.model: text")
    return given or None


def _agent(path: str, data: Any) -> AgentSpec:
    allowed = {
        "slug", "name", "owner", "team", "purpose", "review_every_days", "environments",
        "risk_tier", "grants", "rules", "limits", *CONFIG_KEYS,
    }  # fmt: skip
    r = _Reader(data, path, allowed)
    environments = data.get("environments", ["staging", "production"])
    if (
        not isinstance(environments, list)
        or not environments
        or any(e not in ("staging", "production") for e in environments)
    ):
        raise ManifestError(f"{path}.environments: a list of staging and/or production")
    risk = r.text("risk_tier", "medium")
    if risk not in ("low", "medium", "high", "critical"):
        raise ManifestError(f"{path}.risk_tier: must be low, medium, high or critical")
    return AgentSpec(
        slug=r.text("slug"),
        name=r.text("name"),
        owner=r.text("owner"),
        team=r.text("team"),
        purpose=r.text("purpose"),
        review_every_days=r.integer("review_every_days", 90) or 90,
        environments=tuple(environments),
        risk_tier=risk,
        config=_config(path, data),
        grants=_unique([_grant(p, g) for p, g in r.items("grants")], "grant", f"{path}.grants"),
        rules=_unique([_rule(p, g) for p, g in r.items("rules")], "name", f"{path}.rules"),
        limits=_unique([_limit(p, g) for p, g in r.items("limits")], "name", f"{path}.limits"),
    )


def _team(path: str, data: Any) -> TeamSpec:
    r = _Reader(data, path, {"name", "description", "limits", "reviewers"})
    limits = _unique([_limit(p, g) for p, g in r.items("limits")], "name", f"{path}.limits")
    reviewers = data.get("reviewers")
    return TeamSpec(
        name=r.text("name"),
        description=r.text("description", "") if "description" in data else None,
        limits=limits,
        reviewers=None if reviewers is None else _usernames(f"{path}.reviewers", reviewers),
    )


def parse_manifest(text: str) -> Manifest:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"not valid YAML: {exc}") from None
    if data is None:  # an empty file (a wrong path piped in, say) is not "no changes"
        raise ManifestError("the file is empty: give teams, agents or limits")
    r = _Reader(data, "", {"teams", "agents", "limits"})
    teams = _unique([_team(p, t) for p, t in r.items("teams")], "name", "teams")
    agents = _unique([_agent(p, a) for p, a in r.items("agents")], "slug", "agents")
    limits = _unique([_limit(p, lim) for p, lim in r.items("limits")], "name", "limits")
    return Manifest(teams=teams, agents=agents, limits=limits)
