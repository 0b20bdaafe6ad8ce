"""Replay: the recorded requests of a window re-decided under a candidate release.

Each recorded action of the agent in the window is decided twice by the policy engine:
under the release it was decided under (its ``release_version``; rows older than
releases, or naming a version that is not there, under the agent's stable release) and
under the candidate. What changes is counted per transition (allow -> deny, ...) and per
action, with a few examples. Only the engine is replayed: limits, the kill switch and
standing holds (an open alert, a changed tool) depend on state at the time and are not.

A read: nothing is written, not even an audit event. The rows are read as tuples in
large chunks (no model instances, no query per row); each distinct release is compiled
once (the compiled-policy cache); the engine's request is built by the pipeline's own
``policy_request``. An engine error on a row counts as deny, as the pipeline does.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.gateway.models import Action
from oversight.gateway.pipeline import ActionInput, Credentials, policy_request, reason_dicts
from oversight.policy.compiled import compiled_policy_for
from oversight.policy.engine import CompiledPolicy, Decision
from oversight.policy.engine.types import Reason
from oversight.releases.models import Release

CHUNK_SIZE = 5000
NOT_REPLAYED = (
    "Only the policy engine is replayed (grants and rules): limits, kill switches and "
    "standing holds (open alerts, changed tools) are not, and staging's dry run shows as "
    "the engine's outcome."
)
_ERROR = Decision(
    outcome="deny",
    reasons=(Reason("error", None, "policy error", "deny", "the policy could not be evaluated"),),
    policy_version=0,
    approvals_required=0,
    hold_expires_in=None,
    separation_of_duties=False,
    limit_ids=(),
)


class ReplayInputError(ValueError):
    """A window that cannot be read (a bad duration or date, or an empty window)."""


@dataclass(frozen=True)
class Example:
    """One recorded action whose outcome would change, with the reasons on each side."""

    id: str
    action: str
    resource: str
    params: Any
    environment: str
    time: datetime
    recorded_version: int | None  # what it was decided under (None: the stable release)
    before: str
    after: str
    before_reasons: list[dict[str, Any]]
    after_reasons: list[dict[str, Any]]

    @property
    def params_json(self) -> str:
        """The params on one line, as JSON (for a table cell)."""
        return json.dumps(self.params, sort_keys=True)


@dataclass
class ReplayReport:
    """What a candidate release would have decided differently over a window."""

    agent: str
    release_version: int
    since: datetime
    until: datetime
    stable_version: int | None
    total: int = 0
    unchanged: int = 0
    changed: int = 0
    transitions: dict[str, int] = field(default_factory=dict)  # "allow->deny": count
    outcomes_before: dict[str, int] = field(default_factory=dict)
    outcomes_after: dict[str, int] = field(default_factory=dict)
    by_action: dict[str, dict[str, int]] = field(default_factory=dict)  # changes only
    examples: dict[str, list[Example]] = field(default_factory=dict)
    recorded_versions: dict[str, int] = field(default_factory=dict)  # "v3": rows
    # Rows with no release version (or one that is not there), replayed under stable.
    under_stable: int = 0
    errors: int = 0  # rows with an engine or condition error, on either side
    truncated: bool = False  # stopped at max_rows (the newest rows are replayed)
    seconds: float = 0.0
    not_replayed: str = NOT_REPLAYED

    @property
    def decisions_per_second(self) -> float:
        """Recorded decisions replayed per second (each decided on both sides)."""
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def transition_rows(self) -> list[tuple[str, str, int, list[Example]]]:
        """(before, after, count, examples), the most frequent first."""
        rows = sorted(self.transitions.items(), key=lambda item: (-item[1], item[0]))
        return [(*key.split("->"), count, self.examples.get(key, [])) for key, count in rows]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["decisions_per_second"] = round(self.decisions_per_second, 1)
        data["seconds"] = round(self.seconds, 4)
        for key in ("since", "until"):
            data[key] = data[key].isoformat()
        for examples in data["examples"].values():
            for example in examples:
                example["time"] = example["time"].isoformat()
        return data


def _decide(policy: CompiledPolicy | None, request: Any) -> Decision:
    if policy is None:
        return _ERROR
    try:
        return policy.decide(request)
    except Exception:  # fails closed, as the pipeline does
        return _ERROR


def recorded_rows(*, agent: Agent, since: datetime, until: datetime) -> QuerySet[Any]:
    """The agent's recorded actions in [since, until), newest first, as tuples of what the
    engine needs: (id, environment, action, resource, params asked for, time, release
    version). The params are what the agent asked for: a reviewer's edits are not."""
    return (
        Action.objects.filter(agent_id=agent.pk, created_at__gte=since, created_at__lt=until)
        .order_by("-created_at")
        .values_list(
            "id",
            "environment",
            "action",
            "resource",
            Coalesce("requested_params", "params"),
            "created_at",
            "release_version",
        )
    )


def _has_error(decision: Decision) -> bool:
    return any(reason.kind == "error" for reason in decision.reasons)


def _compiled(agent: Agent, release_id: int | None) -> CompiledPolicy | None:
    try:
        return compiled_policy_for(agent, release_id)
    except Exception:  # a policy that cannot be compiled decides nothing: deny
        return None


def replay(
    *,
    agent: Agent,
    release: Release,
    since: datetime,
    until: datetime | None = None,
    max_examples: int = 5,
    max_rows: int | None = None,
) -> ReplayReport:
    """Re-decide the agent's recorded actions in [since, until) under ``release``."""
    until = until or timezone.now()
    if since >= until:
        raise ReplayInputError("The window is empty: its start is not before its end.")
    if release.agent_id != agent.pk:
        raise ReplayInputError(f"v{release.version} is not a release of {agent.slug}.")
    started = time.perf_counter()
    agent = Agent.objects.select_related("team", "owner").get(pk=agent.pk)
    report = ReplayReport(
        agent=agent.slug,
        release_version=release.version,
        since=since,
        until=until,
        stable_version=agent.stable_version,
    )
    # Each distinct content compiled once, and a release equal to the candidate (same
    # digest) need not be decided twice: its outcome is the candidate's.
    releases = {
        version: (pk, digest)
        for version, pk, digest in Release.objects.filter(agent=agent).values_list(
            "version", "pk", "digest"
        )
    }
    candidate = _compiled(agent, release.pk)
    stable_pk = agent.stable_release_id
    policies: dict[int | None, tuple[CompiledPolicy | None, bool]] = {}

    def baseline(version: int | None) -> tuple[CompiledPolicy | None, bool]:
        found = releases.get(version) if version is not None else None
        pk, digest = found if found else (stable_pk, _digest_of(stable_pk, releases))
        same = digest == release.digest
        return (candidate if same else _compiled(agent, pk)), same

    credentials = {
        env: Credentials(agent=agent, environment=env, switch_id=None)
        for env in ("staging", "production")
    }
    transitions: Counter[str] = Counter()
    before_counts: Counter[str] = Counter()
    after_counts: Counter[str] = Counter()
    versions: Counter[int | None] = Counter()
    by_action: dict[str, Counter[str]] = {}
    examples: dict[str, list[Example]] = {}
    errors = 0
    rows = recorded_rows(agent=agent, since=since, until=until)
    if max_rows is not None:
        rows = rows[: max_rows + 1]
    total = 0
    for pk, env, name, resource, asked, at, version in rows.iterator(CHUNK_SIZE):
        if max_rows is not None and total == max_rows:
            report.truncated = True
            break
        total += 1
        versions[version] += 1
        entry = policies.get(version)
        if entry is None:
            entry = policies[version] = baseline(version)
        before_policy, same = entry
        creds = credentials.get(env) or Credentials(agent=agent, environment=env, switch_id=None)
        request = policy_request(
            creds, ActionInput(action=name, resource=resource, params=asked), at
        )
        after = _decide(candidate, request)
        before = after if same else _decide(before_policy, request)
        errors += _has_error(after) or (not same and _has_error(before))
        before_counts[before.outcome] += 1
        after_counts[after.outcome] += 1
        if before.outcome == after.outcome:
            continue
        key = f"{before.outcome}->{after.outcome}"
        transitions[key] += 1
        by_action.setdefault(name, Counter())[key] += 1
        shown = examples.setdefault(key, [])
        if len(shown) < max_examples:
            shown.append(
                Example(
                    id=str(pk),
                    action=name,
                    resource=resource,
                    params=asked,
                    environment=env,
                    time=at,
                    recorded_version=version if version in releases else None,
                    before=before.outcome,
                    after=after.outcome,
                    before_reasons=reason_dicts(before),
                    after_reasons=reason_dicts(after),
                )
            )
    report.total = total
    report.changed = sum(transitions.values())
    report.unchanged = total - report.changed
    report.transitions = dict(transitions)
    report.outcomes_before, report.outcomes_after = dict(before_counts), dict(after_counts)
    report.by_action = {name: dict(counts) for name, counts in sorted(by_action.items())}
    report.examples = examples
    known = sorted((v, c) for v, c in versions.items() if v in releases)
    report.recorded_versions = {f"v{version}": count for version, count in known}
    report.under_stable = sum(c for v, c in versions.items() if v not in releases)
    report.errors = errors
    report.seconds = time.perf_counter() - started
    return report


def _digest_of(pk: int | None, releases: dict[int, tuple[int, str]]) -> str | None:
    return next((digest for rpk, digest in releases.values() if rpk == pk), None)
