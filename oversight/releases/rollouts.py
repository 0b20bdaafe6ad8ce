"""Writes of rollouts: a candidate release on its way to stable, stage by stage.

    start          awaiting approval (when the team requires it), else running
    approve        by someone other than the release's author or the rollout's starter
    advance        staging -> shadow -> canary, share by share through the plan -> full
    pause/resume   a paused candidate decides nothing; resumed, it decides again
    roll back      the candidate stops deciding; why, with the evidence, is kept
    full           the candidate is promoted: it is the stable release

The agent's row carries what the decision path reads (candidate, stage, canary share);
``_in_force`` writes it in the same transaction as the rollout's state, and every step is
audited there too. The guard (guard.py) calls ``rollout_advance`` and
``rollout_roll_back`` like a person would.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from oversight.agents.constants import RiskTier
from oversight.agents.locking import agent_lock
from oversight.agents.models import Agent
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.releases.assignment import BUCKETS
from oversight.releases.models import (
    DEFAULT_MIN_DECISIONS,
    DEFAULT_PLAN,
    LIVE_STATES,
    Release,
    Rollout,
    RolloutState,
    Stage,
)

logger = logging.getLogger(__name__)
_TIERS = [RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL]
_STARTS = (Stage.STAGING, Stage.SHADOW, Stage.CANARY)


def approval_required(agent: Agent) -> bool:
    """Whether the agent's team requires approved, staged rollouts at its risk tier."""
    floor = agent.team.staged_releases_from
    return bool(floor) and _TIERS.index(agent.risk_tier) >= _TIERS.index(floor)


def live_rollout(agent: Agent) -> Rollout | None:
    return Rollout.objects.filter(agent=agent, state__in=LIVE_STATES).first()


def _target(rollout: Rollout) -> tuple[str, str, str]:
    label = f"{rollout.agent.slug} v{rollout.release.version} rollout"
    return ("releases.rollout", str(rollout.pk), label)


def _summary(rollout: Rollout) -> dict[str, Any]:
    return {
        "release": rollout.release.version,
        "state": rollout.state,
        "stage": rollout.stage,
        "share_percent": rollout.share_percent,
    }


def _audit(actor: Actor, verb: str, rollout: Rollout, before: dict[str, Any], **extra: Any) -> None:
    audit_record(
        actor=actor,
        verb=verb,
        target=_target(rollout),
        before=before,
        after={**_summary(rollout), **extra},
        agent_id=rollout.agent_id,
    )


def _in_force(rollout: Rollout) -> None:
    """Write what the decision path reads onto the agent's row: the candidate, its stage
    and share while running; nothing otherwise (the candidate decides nothing)."""
    running = rollout.state == RolloutState.RUNNING and rollout.stage != Stage.FULL
    share = round(rollout.share_percent * BUCKETS / 100) if running else 0
    Agent.objects.filter(pk=rollout.agent_id).update(
        candidate_release=rollout.release if running else None,
        candidate_version=rollout.release.version if running else None,
        rollout_stage=rollout.stage if running else "",
        canary_share=share,
    )


def plan_check(plan: list[Any]) -> list[int]:
    """A canary plan: increasing percentages, at least one below 100 (a canary that
    starts at 100% is no canary: the guard would have nothing on stable to compare)."""
    if not isinstance(plan, list) or not plan:
        raise ValidationError("The canary plan needs at least one share, e.g. 1, 10, 50, 100.")
    shares = []
    for share in plan:
        if isinstance(share, bool) or not isinstance(share, int) or not 0 < share <= 100:
            raise ValidationError(f"A canary share is a percent from 1 to 100, not {share!r}.")
        shares.append(share)
    if shares != sorted(set(shares)):
        raise ValidationError("Canary shares must increase, each once.")
    if shares[0] == 100:
        raise ValidationError(
            "The canary plan needs a share below 100 before full (e.g. 10, 100), so the"
            " guard has stable to compare the candidate with."
        )
    return shares


@transaction.atomic
def rollout_start(
    *,
    actor: Actor,
    release: Release,
    stage: str = Stage.STAGING,
    plan: list[int] | None = None,
    min_decisions: int = DEFAULT_MIN_DECISIONS,
    auto_advance: bool = True,
) -> Rollout:
    """Start rolling ``release`` out at ``stage``. It waits for another person's approval
    when the team requires it; otherwise its candidate decides from the next request."""
    agent = agent_lock(release.agent_id)
    if stage not in _STARTS:
        raise ValidationError(f"A rollout starts at staging, shadow or canary, not {stage!r}.")
    if release.pk == agent.stable_release_id:
        raise ValidationError(f"v{release.version} is already the stable release.")
    if not 1 <= min_decisions <= 1_000_000:
        raise ValidationError("The minimum decisions per stage is from 1 to 1,000,000.")
    live = live_rollout(agent)
    if live is not None:
        raise ValidationError(
            f"A rollout of v{live.release.version} is {live.get_state_display().lower()};"
            " finish, roll back or cancel it first."
        )
    needs_approval = approval_required(agent)
    if needs_approval and stage != Stage.STAGING:
        raise ValidationError(
            "This agent's team requires an approved, staged rollout: it starts at staging."
        )
    rollout = Rollout.objects.create(
        agent=agent,
        release=release,
        baseline_id=agent.stable_release_id,
        state=RolloutState.AWAITING_APPROVAL if needs_approval else RolloutState.RUNNING,
        stage=stage,
        plan=plan_check(DEFAULT_PLAN if plan is None else plan),
        min_decisions=min_decisions,
        auto_advance=auto_advance,
        needs_approval=needs_approval,
        created_by_id=actor.user_id,
        stage_started_at=None if needs_approval else timezone.now(),
    )
    _in_force(rollout)
    _audit(actor, verbs.ROLLOUT_STARTED, rollout, {}, plan=rollout.plan)
    if needs_approval:
        _tell_approvers(rollout)
    return rollout


def _locked(rollout: Rollout) -> Rollout:
    """The rollout, its agent's row locked first (the order every writer takes)."""
    agent_lock(rollout.agent_id)
    return Rollout.objects.select_related("agent__team", "release").get(pk=rollout.pk)


def _expect(rollout: Rollout, *states: str) -> None:
    if rollout.state not in states:
        raise ValidationError(f"The rollout is {rollout.get_state_display().lower()}.")


@transaction.atomic
def rollout_approve(*, actor: Actor, rollout: Rollout) -> Rollout:
    """Another person's approval: the rollout starts at its first stage."""
    rollout = _locked(rollout)
    _expect(rollout, RolloutState.AWAITING_APPROVAL)
    if actor.user_id is None:
        raise ValidationError("A release is approved by a person.")
    if actor.user_id in (rollout.release.author_id, rollout.created_by_id):
        raise ValidationError("The author of a release cannot approve it; ask someone else.")
    before = _summary(rollout)
    rollout.state, rollout.approved_by_id = RolloutState.RUNNING, actor.user_id
    rollout.stage_started_at = timezone.now()
    rollout.save(update_fields=["state", "approved_by", "stage_started_at"])
    _in_force(rollout)
    _audit(actor, verbs.ROLLOUT_APPROVED, rollout, before)
    return rollout


def _next_stage(rollout: Rollout) -> tuple[str, int]:
    if rollout.stage == Stage.STAGING:
        return Stage.SHADOW, 0
    if rollout.stage == Stage.SHADOW:
        return Stage.CANARY, 0
    step = rollout.step + 1
    if step < len(rollout.plan) and rollout.plan[step] < 100:
        return Stage.CANARY, step
    return Stage.FULL, rollout.step


def _why_unjudged(actor: Actor, rollout: Rollout, why: str) -> str:
    """A person advancing a stage the guard has not judged clean overrides the guard: they
    say why, and under change control they are not the release's author (nor whoever
    started the rollout), as for its approval. The reason records what was overridden."""
    why = why.strip()
    unjudged = rollout.not_judged_because
    if actor.user_id is None or not unjudged:
        return why or f"by {actor.label}"
    if rollout.needs_approval and actor.user_id in (
        rollout.release.author_id,
        rollout.created_by_id,
    ):
        raise ValidationError(
            f"The guard has not judged this stage ({unjudged}). Under change control the"
            " author of a release cannot advance it before then; ask someone else."
        )
    if not why:
        raise ValidationError(
            f"The guard has not judged this stage ({unjudged}): say why you advance it now."
        )
    return f"{why}; advanced before the guard judged the stage: {unjudged}"[:300]


@transaction.atomic
def rollout_advance(*, actor: Actor, rollout: Rollout, why: str = "") -> Rollout:
    """The next stage (or canary share); past the last, the candidate is promoted. A
    person may advance a stage the guard has not judged clean only as ``_why_unjudged``
    says."""
    rollout = _locked(rollout)
    _expect(rollout, RolloutState.RUNNING)
    why = _why_unjudged(actor, rollout, why)
    before = _summary(rollout)
    rollout.stage, rollout.step = _next_stage(rollout)
    rollout.stage_started_at = timezone.now()
    fields = ["stage", "step", "stage_started_at"]
    if rollout.stage == Stage.FULL:
        rollout.state, rollout.ended_at = RolloutState.COMPLETED, timezone.now()
        rollout.ended_reason = why[:300] or "promoted"
        fields += ["state", "ended_at", "ended_reason"]
    rollout.save(update_fields=fields)
    _in_force(rollout)
    if rollout.stage == Stage.FULL:
        from oversight.releases.services import release_promote  # services -> rollouts

        release_promote(actor=actor, release=rollout.release)
        _audit(actor, verbs.ROLLOUT_COMPLETED, rollout, before, why=why)
    else:
        _audit(actor, verbs.ROLLOUT_ADVANCED, rollout, before, why=why)
    return rollout


@transaction.atomic
def rollout_pause(*, actor: Actor, rollout: Rollout, why: str = "") -> Rollout:
    """Stop the candidate deciding anything, keeping the rollout where it is."""
    rollout = _locked(rollout)
    _expect(rollout, RolloutState.RUNNING)
    before = _summary(rollout)
    rollout.state = RolloutState.PAUSED
    rollout.save(update_fields=["state"])
    _in_force(rollout)
    _audit(actor, verbs.ROLLOUT_PAUSED, rollout, before, why=why)
    return rollout


@transaction.atomic
def rollout_resume(*, actor: Actor, rollout: Rollout) -> Rollout:
    """Resume a paused rollout; its stage's count starts again."""
    rollout = _locked(rollout)
    _expect(rollout, RolloutState.PAUSED)
    before = _summary(rollout)
    rollout.state, rollout.stage_started_at = RolloutState.RUNNING, timezone.now()
    rollout.save(update_fields=["state", "stage_started_at"])
    _in_force(rollout)
    _audit(actor, verbs.ROLLOUT_RESUMED, rollout, before)
    return rollout


@transaction.atomic
def rollout_roll_back(
    *,
    actor: Actor,
    rollout: Rollout,
    why: str,
    evidence: list[dict[str, Any]] | None = None,
    restore: bool = True,
) -> Rollout:
    """End the rollout: the candidate stops deciding at once and stable decides
    everything. ``why`` and the ``evidence`` are kept, audited and sent to the owner; the
    agent's working copy goes back to stable (``_restore_working_copy``)."""
    rollout = _locked(rollout)
    _expect(rollout, RolloutState.RUNNING, RolloutState.PAUSED)
    before = _summary(rollout)
    rollout.state, rollout.ended_at = RolloutState.ROLLED_BACK, timezone.now()
    rollout.ended_reason = why[:300]
    if evidence is not None:
        rollout.verdicts = evidence
    rollout.save(update_fields=["state", "ended_at", "ended_reason", "verdicts"])
    _in_force(rollout)
    _audit(actor, verbs.ROLLOUT_ROLLED_BACK, rollout, before, why=why, evidence=evidence or [])
    if restore:
        _restore_working_copy(actor, rollout)
    _tell_owner(rollout)
    return rollout


@transaction.atomic
def rollout_cancel(
    *, actor: Actor, rollout: Rollout, why: str = "", restore: bool = True
) -> Rollout:
    """Withdraw a rollout that has not been approved yet (the working copy goes back to
    stable, as after a rollback)."""
    rollout = _locked(rollout)
    _expect(rollout, RolloutState.AWAITING_APPROVAL)
    before = _summary(rollout)
    rollout.state, rollout.ended_at = RolloutState.CANCELLED, timezone.now()
    rollout.ended_reason = why[:300]
    rollout.save(update_fields=["state", "ended_at", "ended_reason"])
    _audit(actor, verbs.ROLLOUT_CANCELLED, rollout, before, why=why)
    if restore:
        _restore_working_copy(actor, rollout)
    return rollout


def _restore_working_copy(actor: Actor, rollout: Rollout) -> None:
    """A candidate rolled back or withdrawn while it is still the agent's newest release
    and its working copy (the grant and rule rows, the config fields): the working copy
    goes back to the stable release's content, so the next change starts from what is in
    force and cannot bring the rejected candidate back unnoticed. Newer edits are kept."""
    from oversight.releases.content import agent_content, digest  # content -> policy
    from oversight.releases.restore import content_restore  # restore -> policy services
    from oversight.releases.services import releases_batched  # services -> rollouts

    agent = Agent.objects.select_related("team", "owner").get(pk=rollout.agent_id)
    newest = Release.objects.filter(agent=agent).order_by("-version").first()
    stable = Release.objects.filter(pk=agent.stable_release_id).first()
    if stable is None or newest is None or newest.pk != rollout.release_id:
        return
    if digest(agent_content(agent)) != rollout.release.digest:
        return
    try:
        with (
            transaction.atomic(),
            releases_batched(notes=f"back to v{stable.version} after v{newest.version}"),
        ):
            content_restore(actor=actor, agent=agent, content=stable.content)
    except ValidationError as exc:
        # The rollback itself must never fail for this: the candidate already decides
        # nothing. The working copy stays the candidate's, and the policy page says so.
        logger.warning("working copy of %s left as v%s: %s", agent.slug, newest.version, exc)


def rollout_end_for_rollback(*, actor: Actor, agent: Agent, version: int) -> None:
    """A one-click rollback of the agent ends any live rollout first."""
    live = live_rollout(agent)
    if live is None:
        return
    why = f"the agent was rolled back to v{version}"
    if live.state == RolloutState.AWAITING_APPROVAL:
        rollout_cancel(actor=actor, rollout=live, why=why, restore=False)
    else:
        rollout_roll_back(actor=actor, rollout=live, why=why, restore=False)


# --- who is told -----------------------------------------------------------------------


def _link(rollout: Rollout) -> str:
    return reverse("releases:detail", args=[rollout.agent.slug, rollout.release.version])


def _tell_owner(rollout: Rollout) -> None:
    from oversight.notifications.constants import Kind  # notifications -> agents
    from oversight.notifications.services import notify_people_after_commit

    agent = rollout.agent
    notify_people_after_commit(
        kind=Kind.ROLLOUT_ROLLED_BACK,
        team=agent.team,
        users=[agent.owner],
        title=f"{agent.name}: rollout of v{rollout.release.version} rolled back",
        body=rollout.ended_reason,
        link=_link(rollout),
        event=f"rollout:{rollout.pk}:rolled_back",
        agent=agent,
    )


def tell_owner_waiting(rollout: Rollout) -> None:
    """Tell the owner, once per stage, that the guard will not advance it on its own."""
    from oversight.notifications.constants import Kind
    from oversight.notifications.services import notify_people_after_commit

    agent, began = rollout.agent, rollout.stage_started_at or rollout.created_at
    notify_people_after_commit(
        kind=Kind.ROLLOUT_WAITING,
        team=agent.team,
        users=[agent.owner],
        title=f"{agent.name}: rollout of v{rollout.release.version} waits for you"
        f" at {rollout.get_stage_display().lower()}",
        body=rollout.waits_for_a_person,
        link=_link(rollout),
        event=f"rollout:{rollout.pk}:waiting:{rollout.stage}:{rollout.step}:{began.isoformat()}",
        agent=agent,
    )


def _tell_approvers(rollout: Rollout) -> None:
    from oversight.agents.constants import CHANGE
    from oversight.agents.permissions import users_with_agent_perm  # agents -> releases
    from oversight.notifications.constants import Kind
    from oversight.notifications.services import notify_people_after_commit

    agent, author = rollout.agent, rollout.created_by_id
    notify_people_after_commit(
        kind=Kind.RELEASE_AWAITING_APPROVAL,
        team=agent.team,
        users=[u for u in users_with_agent_perm(agent, CHANGE) if u.pk != author],
        title=f"{agent.name}: v{rollout.release.version} awaits your approval",
        body=rollout.release.notes or "A change to the agent needs a second person's approval.",
        link=_link(rollout),
        event=f"rollout:{rollout.pk}:awaiting_approval",
        agent=agent,
    )
