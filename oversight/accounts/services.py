"""Writes about teams. Every change is audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from oversight.accounts import personal_tokens
from oversight.accounts.models import PersonalToken, Team
from oversight.agents.tokens import token_hash
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.audit.snapshot import snapshot
from oversight.live.publish import after_commit, resubscribe_everyone


@transaction.atomic
def team_create(*, actor: Actor, name: str, description: str = "") -> Team:
    slug = slugify(name)
    group = Group.objects.create(name=f"team:{slug}")
    team = Team.objects.create(name=name, slug=slug, description=description, group=group)
    audit_record(actor=actor, verb=verbs.TEAM_CREATED, target=team, after=snapshot(team))
    return team


@transaction.atomic
def team_add_member(*, actor: Actor, team: Team, user: Any) -> None:
    if team.members.filter(pk=user.pk).exists():
        return
    team.members.add(user)
    after_commit(resubscribe_everyone)
    audit_record(
        actor=actor,
        verb=verbs.TEAM_MEMBER_ADDED,
        target=team,
        after={"user": user.get_username()},
    )


@transaction.atomic
def team_update(*, actor: Actor, team: Team, name: str, description: str) -> Team:
    locked = Team.objects.select_for_update().get(pk=team.pk)
    before = snapshot(locked)
    locked.name, locked.description = name, description
    locked.full_clean()
    locked.save()
    audit_record(
        actor=actor, verb=verbs.TEAM_UPDATED, target=locked, before=before, after=snapshot(locked)
    )
    return locked


REVIEW_SETTINGS = (
    "review_reminder_days",
    "review_grace_days",
    "review_pause_after_days",
    "owner_grace_days",
    "inactivity_retire_days",
    "retirement_notice_days",
)


@transaction.atomic
def team_review_settings_update(*, actor: Actor, team: Team, **values: int) -> Team:
    """Change the periods the review, ownership and retirement jobs use for this team."""
    unknown = set(values) - set(REVIEW_SETTINGS)
    if unknown:
        raise ValueError(f"Not a review setting: {', '.join(sorted(unknown))}")
    locked = Team.objects.select_for_update().get(pk=team.pk)
    before = snapshot(locked)
    for field, value in values.items():
        setattr(locked, field, value)
    locked.full_clean()
    after = snapshot(locked)
    if after == before:
        return locked
    locked.save()
    audit_record(actor=actor, verb=verbs.TEAM_UPDATED, target=locked, before=before, after=after)
    return locked


@transaction.atomic
def team_change_control_update(
    *,
    actor: Actor,
    team: Team,
    staged_releases_from: str,
    require_reversibility: bool | None = None,
    trace_url: str | None = None,
) -> Team:
    """From which risk tier up the team's agents need approved, staged rollouts for a
    change ("" for none: every change promoted at once), whether every grant must say if
    its actions can be undone, and the link to an action's trace (None: left as it is).
    Applies to the next change."""
    locked = Team.objects.select_for_update().get(pk=team.pk)
    before = snapshot(locked)
    locked.staged_releases_from = staged_releases_from
    if require_reversibility is not None:
        locked.require_reversibility = require_reversibility
    if trace_url is not None:
        locked.trace_url = trace_url.strip()
    locked.full_clean()
    after = snapshot(locked)
    if after == before:
        return locked
    locked.save(update_fields=["staged_releases_from", "require_reversibility", "trace_url"])
    audit_record(actor=actor, verb=verbs.TEAM_UPDATED, target=locked, before=before, after=after)
    return locked


@transaction.atomic
def personal_token_create(*, user: Any, name: str = "") -> tuple[PersonalToken, str]:
    """Issue a personal API token for ``user``; the raw token is returned once, never stored."""
    raw = personal_tokens.generate()
    token = PersonalToken.objects.create(
        user=user,
        name=name.strip()[:100],
        prefix=personal_tokens.visible_prefix(raw),
        token_hash=token_hash(raw),
    )
    audit_record(
        actor=Actor.for_user(user),
        verb=verbs.PERSONAL_TOKEN_CREATED,
        target=("accounts.personaltoken", str(token.pk), f"{token.prefix}… of {user}"),
        after={"token": token.prefix, "name": token.name, "user": user.get_username()},
    )
    return token, raw


@transaction.atomic
def personal_token_revoke(*, user: Any, token_id: int) -> bool:
    """Revoke one of ``user``'s own tokens at once. False if it is not hers, or was revoked
    already (nothing recorded)."""
    token = PersonalToken.objects.filter(pk=token_id, user=user).first()
    claimed = (
        token is not None
        and PersonalToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        > 0
    )
    if not claimed:
        return False
    audit_record(
        actor=Actor.for_user(user),
        verb=verbs.PERSONAL_TOKEN_REVOKED,
        target=("accounts.personaltoken", str(token.pk), f"{token.prefix}… of {user}"),
        before={"token": token.prefix, "revoked": False},
        after={"token": token.prefix, "revoked": True},
    )
    return True


def _reviewers_group(team: Team) -> Group:
    """The team's reviewers' group, made (and granted on the team's agents) on first use."""
    if team.reviewers_group_id is not None:
        return team.reviewers_group
    from oversight.agents.models import Agent  # agents -> accounts, not the reverse
    from oversight.agents.permissions import grant_team_reviewers

    group = Group.objects.create(name=f"team-reviewers:{team.slug}")
    team.reviewers_group = group
    team.save(update_fields=["reviewers_group"])
    for agent in Agent.objects.filter(team=team):
        grant_team_reviewers(agent, group)
    return group


def _reviewers_changed(team: Team) -> None:
    """Open sockets re-read what they may see (the new reviewer's queue fills at once);
    the team's held actions are checked for nobody left who can decide them."""
    from oversight.approvals.escalation import escalate_after_access_change

    after_commit(resubscribe_everyone)
    escalate_after_access_change(team.agents.values_list("pk", flat=True))


@transaction.atomic
def team_reviewer_add(*, actor: Actor, team: Team, user: Any) -> bool:
    """Make an active person one of the team's reviewers: they may view and decide the
    held actions of every agent of the team. False if they were one already."""
    if not user.is_active:
        raise ValidationError(f"{user.get_username()} is deactivated.")
    locked = Team.objects.select_for_update().get(pk=team.pk)
    group = _reviewers_group(locked)
    if group.user_set.filter(pk=user.pk).exists():
        return False
    group.user_set.add(user)
    _reviewers_changed(locked)
    audit_record(
        actor=actor,
        verb=verbs.TEAM_REVIEWER_ADDED,
        target=locked,
        after={"reviewer": user.get_username()},
    )
    return True


@transaction.atomic
def team_reviewer_remove(*, actor: Actor, team: Team, user: Any) -> bool:
    """Remove a reviewer; held actions nobody else can decide escalate to the admins.
    False if they were not one."""
    locked = Team.objects.select_for_update().get(pk=team.pk)
    if locked.reviewers_group_id is None:
        return False
    group = locked.reviewers_group
    if not group.user_set.filter(pk=user.pk).exists():
        return False
    group.user_set.remove(user)
    _reviewers_changed(locked)
    audit_record(
        actor=actor,
        verb=verbs.TEAM_REVIEWER_REMOVED,
        target=locked,
        before={"reviewer": user.get_username()},
    )
    return True


# What a person may see and do beyond their object permissions: their groups (roles and
# teams) and their standing.
USER_ACCESS_FIELDS = ("is_active", "is_staff", "is_superuser")


def user_access(user: Any) -> dict[str, Any]:
    """A person's access as the audit log records it: group names, sorted, and standing."""
    return {
        "groups": sorted(user.groups.values_list("name", flat=True)),
        **{field: getattr(user, field) for field in USER_ACCESS_FIELDS},
    }


def user_access_as_shown(initial: dict[str, Any]) -> dict[str, Any]:
    """``user_access`` as a form showed it (its initial values: groups or their ids)."""
    ids = [getattr(group, "pk", group) for group in initial.get("groups", [])]
    return {
        "groups": sorted(Group.objects.filter(pk__in=ids).values_list("name", flat=True)),
        **{field: initial.get(field) for field in USER_ACCESS_FIELDS},
    }


def user_created(*, actor: Actor, user: Any) -> None:
    """A person added on the admin site: audited, with their standing and groups."""
    audit_record(
        actor=actor, verb=verbs.USER_CREATED, target=user, before=None, after=user_access(user)
    )


def user_access_changed(*, actor: Actor, user: Any, before: dict[str, Any]) -> bool:
    """After a person's groups or standing were changed (the admin site saves them): the
    change is audited, and open sockets re-read what each person may see, so someone
    removed from a team or deactivated is sent nothing more of it. False if nothing
    changed."""
    after = user_access(user)
    if after == before:
        return False
    after_commit(resubscribe_everyone)
    changed = [key for key in after if after[key] != before.get(key)]
    audit_record(
        actor=actor,
        verb=verbs.USER_ACCESS_CHANGED,
        target=user,
        before={key: before.get(key) for key in changed},
        after={key: after[key] for key in changed},
    )
    return True
