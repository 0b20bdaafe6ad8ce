"""Writes of releases: cut one from the agent's current state and promote it, and roll
an agent back to an earlier release's content.

Every change to what an agent is and may do calls ``release_after_change`` in its own
transaction (policy/services.py for grants and rules, agents/services.py for config).
Inside ``releases_batched()`` the calls are gathered and one release per agent is cut
when the batch ends (a manifest applied, a rollback), still in that transaction."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from oversight.agents.locking import agent_lock
from oversight.agents.models import Agent
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.releases.content import agent_content, digest
from oversight.releases.models import ROLLBACK_NOTES, Release, RolloutState


@dataclass
class _Batch:
    changed: dict[int, Actor] = field(default_factory=dict)


_batch: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar(
    "releases_batch", default=None
)


def _author(actor: Actor) -> Any:
    if actor.user_id is None:
        return None
    return get_user_model().objects.filter(pk=actor.user_id).first()


def _summary(release: Release) -> dict[str, Any]:
    return {"version": release.version, "digest": release.digest, "notes": release.notes}


@transaction.atomic
def release_record(
    *, actor: Actor, agent: Agent, notes: str = "", promote: bool | None = None
) -> Release | None:
    """Cut a release of the agent's current state, in the caller's transaction, and
    promote it (make it stable) unless its team requires an approved, staged rollout at
    the agent's risk tier, or a rollout is under way: then it waits (and, when required,
    a rollout of it awaits approval). ``promote`` True promotes regardless (a rollback).
    Content identical to the newest release is not a new release: None then."""
    from oversight.releases import rollouts  # rollouts -> services

    locked = agent_lock(agent.pk)
    content = agent_content(locked)
    found = digest(content)
    newest = Release.objects.filter(agent=locked).order_by("-version").first()
    current = Release.objects.filter(pk=locked.stable_release_id).first()
    for same in (newest, current):  # nothing new, or back to what is in force
        if same is not None and same.digest == found:
            _working_copy_is(locked, same)
            return None
    base = Release.objects.filter(pk=locked.working_release_id).first()
    release = Release.objects.create(
        agent=locked,
        version=(newest.version + 1) if newest else 1,
        digest=found,
        content=content,
        parent=base or newest,  # made from what the working copy was
        author=_author(actor),
        notes=notes[:300],
    )
    _working_copy_is(locked, release)
    target = ("releases.release", str(release.pk), f"{locked.slug} v{release.version}")
    audit_record(
        actor=actor,
        verb=verbs.RELEASE_CREATED,
        target=target,
        after=_summary(release),
        agent_id=locked.pk,
    )
    live = rollouts.live_rollout(locked)
    required = rollouts.approval_required(locked)
    if promote is None:
        promote = current is None or (not required and live is None)
    if promote:
        _promote(actor, locked, release, current)
    elif required and (live is None or live.state == RolloutState.AWAITING_APPROVAL):
        if live is not None:
            why = f"v{release.version} replaces it"
            rollouts.rollout_cancel(actor=actor, rollout=live, why=why, restore=False)
        rollouts.rollout_start(actor=actor, release=release)
    return release


@transaction.atomic
def release_promote(*, actor: Actor, release: Release) -> None:
    """Make ``release`` the agent's stable release (a rollout that reached full)."""
    agent = agent_lock(release.agent_id)
    if agent.stable_release_id == release.pk:
        return
    current = Release.objects.filter(pk=agent.stable_release_id).first()
    _promote(actor, agent, release, current)


def _working_copy_is(agent: Agent, release: Release) -> None:
    if agent.working_release_id != release.pk:
        Agent.objects.filter(pk=agent.pk).update(working_release=release)
        agent.working_release = release


def _promote(actor: Actor, agent: Agent, release: Release, current: Release | None) -> None:
    Agent.objects.filter(pk=agent.pk).update(stable_release=release, stable_version=release.version)
    agent.stable_release, agent.stable_version = release, release.version
    audit_record(
        actor=actor,
        verb=verbs.RELEASE_PROMOTED,
        target=("releases.release", str(release.pk), f"{agent.slug} v{release.version}"),
        before=_summary(current) if current else None,
        after=_summary(release),
        agent_id=agent.pk,
    )


def release_after_change(*, actor: Actor, agent_id: int) -> None:
    """The hook every change calls: a release now, or at the end of the batch."""
    batch = _batch.get()
    if batch is not None:
        batch.changed.setdefault(agent_id, actor)
        return
    release_record(actor=actor, agent=Agent(pk=agent_id))


@contextlib.contextmanager
def releases_batched(notes: str = "", promote: bool | None = None) -> Iterator[None]:
    """Gather the changes made inside into one release per agent (cut on a clean exit)."""
    if _batch.get() is not None:  # nested: the outer batch cuts
        yield
        return
    batch = _Batch()
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
    for agent_id, actor in batch.changed.items():
        release_record(actor=actor, agent=Agent(pk=agent_id), notes=notes, promote=promote)


@transaction.atomic
def release_rollback(*, actor: Actor, release: Release) -> Release | None:
    """Make ``release``'s content current again (config, then grants and rules through the
    policy services, so the policy version and its caches follow), recorded as a new
    release whose parent is the current one. None when it is already what is in force."""
    from oversight.releases.restore import content_restore  # restore -> policy services
    from oversight.releases.rollouts import (  # rollouts -> services
        approval_required,
        rollout_end_for_rollback,
    )
    from oversight.releases.selectors import release_was_stable

    agent = agent_lock(release.agent_id)
    was = agent.stable_release_id
    if approval_required(agent) and not release_was_stable(release=release):
        raise ValidationError(
            f"v{release.version} was never in force: its team requires an approved, staged"
            " rollout for it."
        )
    rollout_end_for_rollback(actor=actor, agent=agent, version=release.version)
    with releases_batched(notes=f"{ROLLBACK_NOTES}{release.version}", promote=True):
        content_restore(actor=actor, agent=agent, content=release.content)
    newest = Release.objects.filter(agent=agent).order_by("-version").first()
    if newest is not None and newest.digest == release.digest:  # cut but never promoted
        release_promote(actor=actor, release=newest)
    agent.refresh_from_db()
    new = Release.objects.filter(pk=agent.stable_release_id).first()
    if new is None or new.pk == was:
        return None
    audit_record(
        actor=actor,
        verb=verbs.RELEASE_ROLLED_BACK,
        target=("releases.release", str(new.pk), f"{agent.slug} v{new.version}"),
        before={"rolled_back_to": release.version},
        after=_summary(new),
        agent_id=agent.pk,
    )
    return new
