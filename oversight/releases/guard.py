"""The rollout guard: a periodic look at every running rollout, comparing the candidate
with stable over the current stage on what governance sees, and acting on it.

    regression      roll back (the candidate stops deciding), with the evidence, and
                    tell the owner
    enough, clean   advance to the next stage (when the rollout advances on its own)
    not judged      the stage has its decisions, but stable too few to compare with
                    (under JUDGED_FROM): wait for a person, and tell the owner once
    otherwise       keep the verdicts on the rollout for its page, and look again

What is compared, per stage (counts since the stage began, halted decisions left out):

    shadow          the same production requests, decided under stable and evaluated
                    under the candidate: deny and hold rates, as pairs
    canary          requests decided under the candidate against those under stable:
                    deny, hold, limit-hit, reviewer rejection and failure rates; action
                    names and resource kinds new to the agent (never used under a
                    stable release in the week before); critical alerts
    staging         staging requests under the candidate against the staging requests
                    of the week before the stage under stable's content (any version
                    with its digest): deny and hold rates; actions and resource kinds

The statistics are in guard_stats.py (one-sided sequential tests, alpha split over the
metrics, so identical releases are rolled back in well under 1 in 100 rollouts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import CharField, Count, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from oversight.agents.locking import agent_lock
from oversight.audit.actors import Actor
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.incidents.models import TriggerKind
from oversight.incidents.services import incident_open_safely
from oversight.monitoring.constants import Severity
from oversight.monitoring.models import Alert
from oversight.releases.guard_stats import Arm, Pairs, Verdict, compare
from oversight.releases.models import Release, Rollout, RolloutState, Stage
from oversight.releases.rollouts import rollout_advance, rollout_roll_back, tell_owner_waiting
from oversight.releases.selectors import same_content_versions

logger = logging.getLogger(__name__)
GUARD = Actor.system("rollout guard")
# An action or resource kind counts as new once the candidate used it this often.
NEW_AFTER = 3
# What stable "touched": its decisions over this long before the stage.
HISTORY = timedelta(days=7)
_LIMIT_REASON = '"kind": "limit"'
_REVIEWED = (
    ActionStatus.APPROVED,
    ActionStatus.REJECTED,
    ActionStatus.SUCCEEDED,
    ActionStatus.FAILED,
)


@dataclass(frozen=True)
class Look:
    """One look at one rollout: the verdicts, other findings, and the candidate's count."""

    verdicts: list[Verdict]
    findings: list[dict[str, Any]]
    decisions: int

    @property
    def regressed(self) -> bool:
        return bool(self.findings) or any(v.regressed for v in self.verdicts)

    def evidence(self) -> list[dict[str, Any]]:
        rows = [_verdict_row(v) for v in self.verdicts]
        return [*rows, *self.findings]


def _verdict_row(verdict: Verdict) -> dict[str, Any]:
    return {
        "kind": "metric",
        "metric": verdict.metric,
        "stable": [verdict.stable.hits, verdict.stable.n],
        "candidate": [verdict.candidate.hits, verdict.candidate.n],
        "difference": round(verdict.difference, 4),
        "statistic": min(verdict.statistic, 1e12),
        "threshold": verdict.threshold,
        "enough": verdict.enough,
        "regressed": verdict.regressed,
        "explain": verdict.explain(),
    }


def _counts(actions: QuerySet[Action], status: str) -> dict[str, int]:
    """Decided, denied, held, stopped by a limit, reviewed, rejected, reported, failed."""
    held = Q(**{status: ActionStatus.PENDING})
    return actions.annotate(reasons_text=Cast("reasons", CharField())).aggregate(
        n=Count("pk"),
        denied=Count("pk", filter=Q(**{status: ActionStatus.DENIED})),
        held=Count("pk", filter=held),
        limit=Count("pk", filter=Q(reasons_text__contains=_LIMIT_REASON)),
        reviewed=Count("pk", filter=held & Q(status__in=_REVIEWED)),
        rejected=Count("pk", filter=held & Q(status=ActionStatus.REJECTED)),
        reported=Count("pk", filter=Q(status__in=(ActionStatus.SUCCEEDED, ActionStatus.FAILED))),
        failed=Count("pk", filter=Q(status=ActionStatus.FAILED)),
    )


_RATES = {  # metric: (hits, out of)
    "deny rate": ("denied", "n"),
    "hold rate": ("held", "n"),
    "limit-hit rate": ("limit", "n"),
    "reviewer rejection rate": ("rejected", "reviewed"),
    "failure rate": ("failed", "reported"),
}


def _rates(
    stable: dict[str, int], candidate: dict[str, int], names: list[str], pairs: dict[str, Pairs]
) -> list[Verdict]:
    return [
        compare(
            name,
            Arm(stable[_RATES[name][0]], stable[_RATES[name][1]]),
            Arm(candidate[_RATES[name][0]], candidate[_RATES[name][1]]),
            metrics=len(names),
            pairs=pairs.get(name),
        )
        for name in names
    ]


def _window(rollout: Rollout, since: datetime) -> QuerySet[Action]:
    return Action.objects.filter(agent_id=rollout.agent_id, created_at__gte=since).exclude(
        decision=ActionStatus.HALTED
    )


def _kind(resource: str) -> str:
    """A resource's kind: up to its first "/" (``stripe:charge/``), else its last ":"."""
    if "/" in resource:
        return resource.split("/", 1)[0] + "/"
    return resource.rsplit(":", 1)[0] + ":" if ":" in resource else resource


def _stable_history(rollout: Rollout, since: datetime) -> QuerySet[Action]:
    """What the agent did under its stable releases: its decisions from HISTORY before
    ``since`` on, under whichever release was stable at the time, so a stable release
    made by a rollback (a new version of older content) or promoted an hour ago brings
    the agent's history with it. Left out: what any rollout's candidate decided while it
    was the candidate (this one's included), whether it was promoted later or not."""
    start = since - HISTORY
    candidates = Rollout.objects.filter(agent_id=rollout.agent_id).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=start)
    )
    found = Action.objects.filter(agent_id=rollout.agent_id, created_at__gte=start)
    for version, began, ended in candidates.values_list(
        "release__version", "created_at", "ended_at"
    ):
        during = Q(release_version=version, created_at__gte=began)
        found = found.exclude(during if ended is None else during & Q(created_at__lte=ended))
    return found


def _same_content(rollout: Rollout) -> QuerySet[Release]:
    """The versions with the baseline's content: a rollback makes a new version of an
    earlier release, which decides as it did."""
    if rollout.baseline is None:
        return Release.objects.none().values("version")
    return same_content_versions(agent_id=rollout.agent_id, version=rollout.baseline.version)


def _new_things(
    rollout: Rollout, candidate: QuerySet[Action], since: datetime
) -> list[dict[str, Any]]:
    """Action names and resource kinds the candidate used NEW_AFTER times or more that the
    agent never used under its stable releases (``_stable_history``)."""
    stable = _stable_history(rollout, since)
    found = []
    used = candidate.values("action").annotate(times=Count("pk")).filter(times__gte=NEW_AFTER)
    for row in used:
        if not stable.filter(action=row["action"]).exists():
            found.append(_finding("new action", row["action"], row["times"]))
    kinds: dict[str, int] = {}
    for resource, times in candidate.values_list("resource").annotate(times=Count("pk")):
        kinds[_kind(resource)] = kinds.get(_kind(resource), 0) + times
    for kind, times in sorted(kinds.items()):
        if times >= NEW_AFTER and not stable.filter(resource__startswith=kind).exists():
            found.append(_finding("new resource kind", kind, times))
    return found


def _finding(kind: str, name: str, times: int) -> dict[str, Any]:
    explain = (
        f"{kind} {name!r}: used {times} times under the candidate, never under a stable"
        f" release in the {HISTORY.days} days before"
    )
    return {"kind": kind, "name": name, "times": times, "regressed": True, "explain": explain}


def _alerts(rollout: Rollout, since: datetime) -> list[dict[str, Any]]:
    alerts = Alert.objects.filter(
        agent_id=rollout.agent_id, opened_at__gte=since, severity=Severity.CRITICAL
    )
    return [
        {
            "kind": "alert",
            "name": alert.title,
            "alert": alert.pk,
            "regressed": True,
            "explain": f"critical alert opened during the canary: {alert.title}",
        }
        for alert in alerts
    ]


def look(rollout: Rollout) -> Look:
    """Compare the candidate with stable over the rollout's current stage."""
    since = rollout.stage_started_at or rollout.created_at
    window = _window(rollout, since)
    version = rollout.release.version
    if rollout.stage == Stage.SHADOW:
        both = window.filter(shadow_version=version)
        stable, candidate = _counts(both, "decision"), _counts(both, "shadow_status")
        pairs = {
            "deny rate": _pairs(both, ActionStatus.DENIED),
            "hold rate": _pairs(both, ActionStatus.PENDING),
        }
        verdicts = _rates(stable, candidate, ["deny rate", "hold rate"], pairs)
        return Look(verdicts, [], candidate["n"])
    baseline = rollout.baseline.version if rollout.baseline else None
    under_candidate = window.filter(release_version=version)
    if rollout.stage == Stage.STAGING:  # stable's staging traffic before the stage began
        history = _stable_history(rollout, since).filter(
            created_at__lt=since, environment="staging", release_version__in=_same_content(rollout)
        )
        under_stable = history.exclude(decision=ActionStatus.HALTED)
        under_candidate = under_candidate.filter(environment="staging")
    else:
        under_stable = window.filter(release_version=baseline, environment="production")
    stable, candidate = _counts(under_stable, "decision"), _counts(under_candidate, "decision")
    names = list(_RATES) if rollout.stage == Stage.CANARY else ["deny rate", "hold rate"]
    verdicts = _rates(stable, candidate, names, {})
    findings = _new_things(rollout, under_candidate, since)
    if rollout.stage == Stage.CANARY:
        findings += _alerts(rollout, since)
    return Look(verdicts, findings, candidate["n"])


def _pairs(both: QuerySet[Action], status: str) -> Pairs:
    found = both.aggregate(
        candidate_only=Count("pk", filter=Q(shadow_status=status) & ~Q(decision=status)),
        stable_only=Count("pk", filter=Q(decision=status) & ~Q(shadow_status=status)),
    )
    return Pairs(candidate_only=found["candidate_only"], stable_only=found["stable_only"])


def _why(found: Look) -> str:
    worst = [row["explain"] for row in found.evidence() if row.get("regressed")]
    return "guard: " + "; ".join(worst)


@transaction.atomic
def rollout_guard_one(rollout: Rollout) -> str:
    """Look at one running rollout and act: "rolled_back", "advanced", "watching", or
    "waiting" when the stage has its decisions but stable had too few to judge it by (the
    owner is told once; a person advances it); "changed" when a person moved it meanwhile.
    The agent's row is locked while it looks, so no person's step can slip between the
    look and the act."""
    agent_lock(rollout.agent_id)
    seen = (rollout.stage, rollout.step)
    rollout = Rollout.objects.select_related("agent", "release", "baseline").get(pk=rollout.pk)
    if rollout.state != RolloutState.RUNNING or (rollout.stage, rollout.step) != seen:
        return "changed"
    found = look(rollout)
    if found.regressed:
        rollout_roll_back(actor=GUARD, rollout=rollout, why=_why(found), evidence=found.evidence())
        incident_open_safely(
            actor=GUARD,
            kind=TriggerKind.ROLLBACK,
            target=("releases.rollout", str(rollout.pk)),
            summary=f"{rollout.agent.name} v{rollout.release.version} rolled back: {_why(found)}",
            agent=rollout.agent,
        )
        return "rolled_back"
    rollout.checked_at, rollout.verdicts = timezone.now(), found.evidence()
    Rollout.objects.filter(pk=rollout.pk, state=RolloutState.RUNNING).update(
        checked_at=rollout.checked_at, verdicts=rollout.verdicts
    )
    if not rollout.auto_advance or found.decisions < rollout.decisions_to_advance:
        return "watching"
    if rollout.waits_for_a_person:  # not judged: stable had too few to compare with
        tell_owner_waiting(rollout)
        return "waiting"
    why = f"guard: {found.decisions} decisions under the candidate, no regression"
    rollout_advance(actor=GUARD, rollout=rollout, why=why)
    return "advanced"


def rollouts_guard() -> dict[str, str]:
    """The periodic job: every running rollout, each on its own (one failing to be looked
    at does not stop the others; it is looked at again next time)."""
    done = {}
    running = Rollout.objects.filter(state=RolloutState.RUNNING).select_related(
        "agent", "release", "baseline"
    )
    for rollout in running:
        try:
            done[str(rollout.pk)] = rollout_guard_one(rollout)
        except Exception:
            logger.exception("the guard could not look at rollout %s", rollout.pk)
            done[str(rollout.pk)] = "error"
    return done
