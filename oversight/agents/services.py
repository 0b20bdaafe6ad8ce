"""Writes to the agent registry. Each runs in one transaction with its audit event."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from guardian.shortcuts import assign_perm, remove_perm

from oversight.accounts.models import Team
from oversight.agents import permissions, tokens
from oversight.agents.access import AgentRetired
from oversight.agents.constants import (
    APPROVE,
    DEFAULT_REVIEW_INTERVAL_DAYS,
    UNDO_TOKEN_NAME,
    VIEW,
    AgentStatus,
    AlertResponse,
    RiskTier,
)
from oversight.agents.locking import agent_lock
from oversight.agents.models import Agent, AgentToken
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.audit.snapshot import snapshot
from oversight.live.publish import after_commit, resubscribe_everyone
from oversight.releases.content import CONFIG_FIELDS
from oversight.releases.services import release_after_change

EDITABLE_FIELDS = (
    "name",
    "purpose",
    "owner",
    "team",
    "environments",
    "status",
    "risk_tier",
    "review_interval_days",
    "alert_response",
    "instructions",
    "model_name",
    "model_settings",
    "tools",
    "compensation_webhook_url",
)


def _check_webhook(agent: Agent) -> None:
    """A compensation webhook is https (http only to this machine), as a team's is."""
    from oversight.notifications.models import validate_webhook_url  # notifications -> agents

    if agent.compensation_webhook_url:
        try:
            validate_webhook_url(agent.compensation_webhook_url)
        except ValidationError as exc:
            raise ValidationError({"compensation_webhook_url": exc.messages}) from None


def _require_active_owner(owner: Any) -> None:
    if owner is None:
        raise ValidationError({"owner": "Every agent needs a named owner."})
    if not owner.is_active:
        raise ValidationError(
            {"owner": f"{owner.get_username()} is deactivated and cannot own agents."}
        )


# Paths under /agents/ that are not an agent's (agents/urls.py).
RESERVED_SLUGS = frozenset({"new"})
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _new_slug(slug: str, name: str) -> str:
    """A new agent's slug, given or made from its name: lowercase letters, digits and
    single hyphens (tokens, manifests and URLs name agents by it: no two may differ by
    case or by `_` for `-` alone), not a path of the registry's own, not taken."""
    made = not slug
    slug = slug or re.sub(r"[-_]+", "-", slugify(name)).strip("-")
    whose = f"The name makes the slug {slug!r}, which" if made else "This slug"
    longest = Agent._meta.get_field("slug").max_length
    if made and not slug:
        raise ValidationError(
            {"slug": "The name makes no slug (none of its letters is a to z): type one, with"
             " lowercase letters, digits and single hyphens."}
        )  # fmt: skip
    if made and len(slug) > longest:
        raise ValidationError(
            {"slug": f"The name makes a slug of {len(slug)} characters, more than {longest}:"
             " type a shorter one."}
        )  # fmt: skip
    if not _SLUG.fullmatch(slug):
        raise ValidationError(
            {"slug": f"{whose} is not one: use lowercase letters, digits and single hyphens."}
        )
    if slug in RESERVED_SLUGS:
        raise ValidationError({"slug": f"{whose} is a page of the registry; choose another."})
    if Agent.objects.filter(slug__iexact=slug).exists():
        raise ValidationError({"slug": f"{whose} is taken by another agent; choose another."})
    return slug


def _check_name(name: str, *, other_than: int | None = None) -> None:
    """No two agents in service share a name (a retired one's may be taken again): cards,
    queues and messages name agents by it, and two "Refund bot"s cannot be told apart."""
    same = Agent.objects.filter(name__iexact=name.strip()).exclude(status=AgentStatus.RETIRED)
    other = same.exclude(pk=other_than).only("name", "slug").first()
    if other is not None:
        raise ValidationError(
            {
                "name": f"Another agent is named “{other.name}” (its slug is {other.slug});"
                " give this one a name people can tell apart."
            }
        )


def _next_review_due(*, since: dt.datetime, interval_days: int) -> dt.date:
    # The local calendar date, as `review_overdue` compares with `timezone.localdate()`.
    return timezone.localdate(since) + dt.timedelta(days=interval_days)


@transaction.atomic
def agent_create(
    *,
    actor: Actor,
    name: str,
    purpose: str,
    owner: Any,
    team: Team,
    slug: str = "",
    environments: list[str] | None = None,
    risk_tier: str = RiskTier.MEDIUM,
    review_interval_days: int = DEFAULT_REVIEW_INTERVAL_DAYS,
    alert_response: str = AlertResponse.HOLD,
    instructions: str = "",
    model_name: str = "",
    model_settings: dict[str, Any] | None = None,
    tools: list[Any] | None = None,
    compensation_webhook_url: str = "",
) -> Agent:
    _require_active_owner(owner)
    _check_name(name)
    now = timezone.now()
    agent = Agent(
        name=name,
        slug=_new_slug(slug, name),
        purpose=purpose,
        owner=owner,
        team=team,
        environments=environments or ["staging"],
        status=AgentStatus.ACTIVE,
        risk_tier=risk_tier,
        review_interval_days=review_interval_days,
        alert_response=alert_response,
        instructions=instructions,
        model_name=model_name,
        model_settings=model_settings or {},
        tools=tools or [],
        compensation_webhook_url=compensation_webhook_url,
        next_review_due=_next_review_due(since=now, interval_days=review_interval_days),
    )
    agent.full_clean()
    _check_webhook(agent)
    agent.save()
    permissions.grant_owner(agent, owner)
    permissions.grant_team(agent)
    after_commit(resubscribe_everyone)
    audit_record(actor=actor, verb=verbs.AGENT_CREATED, target=agent, after=snapshot(agent))
    release_after_change(actor=actor, agent_id=agent.pk)
    return agent


class StaleEdit(ValidationError):
    """Fields someone else changed since the editor's form was shown, which the editor
    changed too: `current` holds their values now."""

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__(
            {
                field: "Changed by someone else since you opened this form: now "
                f"{_shown(value)}. Save again to replace it with yours."
                for field, value in current.items()
            }
        )
        self.current = current


def _comparable(value: Any) -> Any:
    return value.pk if hasattr(value, "pk") else value


def _shown(value: Any) -> str:
    text = str(value.get_username() if hasattr(value, "get_username") else value)
    return text if len(text) <= 80 else "different (see the agent's History)"


def _check_not_stale(locked: Agent, changes: dict[str, Any], expected: dict[str, Any]) -> None:
    """Optimistic locking of an edit form: a field it changes must still hold what the
    form showed (`expected`), unless it holds the new value already."""
    stale = {
        field: getattr(locked, field)
        for field, shown in expected.items()
        if field in changes
        and _comparable(getattr(locked, field))
        not in (_comparable(shown), _comparable(changes[field]))
    }
    if stale:
        raise StaleEdit(stale)


@transaction.atomic
def agent_update(
    *, actor: Actor, agent: Agent, expected: dict[str, Any] | None = None, **changes: Any
) -> Agent:
    """Apply ``changes`` (a subset of EDITABLE_FIELDS); audit before and after.

    The row is locked first so two editors cannot both read the same "before"
    and silently overwrite each other's work. ``expected``: what an edit form showed of
    the fields it changes; one of them changed since by someone else raises StaleEdit.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    locked = agent_lock(agent.pk)
    _check_not_stale(locked, changes, expected or {})
    before = snapshot(locked)
    old_owner, old_team = locked.owner, locked.team
    old_environments = list(locked.environments)
    changed = {field for field, value in changes.items() if getattr(locked, field) != value}
    if changed and locked.status == AgentStatus.RETIRED:
        raise AgentRetired(locked)  # from any caller: the edit page, the admin site, a script

    for field, value in changes.items():
        setattr(locked, field, value)
    # An agent whose owner left can still be paused or retired (by the periodic jobs, or
    # by an admin); any other change needs a named, active owner.
    if changed - {"status"}:
        _require_active_owner(locked.owner)
    if "name" in changed:
        _check_name(locked.name, other_than=locked.pk)
    if locked.owner_id != old_owner.pk:
        locked.unowned_since = None  # someone took the agent over
    if "status" in changed and locked.status == AgentStatus.RETIRED and not locked.retired_at:
        locked.retired_at = timezone.now()
    today = timezone.localdate()
    if "status" in changed and locked.status == AgentStatus.ACTIVE:
        _require_recertified(locked, today)
    if "review_interval_days" in changed and locked.next_review_due >= today:
        # A date already passed stays: only a re-certification moves it.
        since = locked.last_reviewed_at or locked.created_at
        locked.next_review_due = _next_review_due(
            since=since, interval_days=locked.review_interval_days
        )
    locked.full_clean()
    _check_webhook(locked)
    after = snapshot(locked)
    if after == before:
        return locked
    locked.save()

    if locked.owner_id != old_owner.pk:
        permissions.revoke_owner(locked, old_owner)
        permissions.grant_owner(locked, locked.owner)
    if locked.team_id != old_team.pk:
        permissions.revoke_team(locked, old_team)
        permissions.grant_team(locked)
    _revoke_tokens_of_dropped_environments(actor, locked, old_environments)
    if locked.owner_id != old_owner.pk or locked.team_id != old_team.pk:
        from oversight.approvals.escalation import escalate_after_access_change

        after_commit(resubscribe_everyone)
        escalate_after_access_change([locked.pk])
    audit_record(actor=actor, verb=verbs.AGENT_UPDATED, target=locked, before=before, after=after)
    if changed & set(CONFIG_FIELDS):
        release_after_change(actor=actor, agent_id=locked.pk)
    return locked


def _require_recertified(agent: Agent, today: dt.date) -> None:
    if agent.paused_for_review(today):
        overdue = (today - agent.next_review_due).days
        raise ValidationError(
            {
                "status": f"Its re-certification is {overdue} days overdue: re-certify "
                f"{agent.name} first, then set it active."
            }
        )


def _revoke_tokens_of_dropped_environments(
    actor: Actor, agent: Agent, old_environments: list[str]
) -> None:
    """An environment the agent is no longer registered for keeps no working token."""
    dropped = set(old_environments) - set(agent.environments)
    for token in agent.tokens.filter(environment__in=dropped, revoked_at__isnull=True):
        token_revoke(actor=actor, token=token)


ACCESS_LEVELS: dict[str, tuple[str, ...]] = {
    "viewer": (VIEW,),
    "reviewer": (VIEW, APPROVE),
}


def _access_changed(
    actor: Actor, agent: Agent, user: Any, verb: str, before: set[str], after: set[str]
) -> None:
    """Open sockets re-read what they may see (a new reviewer's queue fills at once); held
    actions nobody left can decide escalate; the change is audited, keyed by the person."""
    from oversight.approvals.escalation import escalate_after_access_change  # -> agents

    after_commit(resubscribe_everyone)
    escalate_after_access_change([agent.pk])
    key = f"access of {user.get_username()}"
    audit_record(
        actor=actor,
        verb=verb,
        target=agent,
        before={key: sorted(before)},
        after={key: sorted(after)},
    )


@transaction.atomic
def agent_access_grant(*, actor: Actor, agent: Agent, user: Any, level: str) -> bool:
    """Give a person exactly read (viewer) or read-and-approve (reviewer) access to one
    agent: a reviewer made a viewer no longer approves.

    Returns False when they already had exactly that access (nothing recorded).
    """
    perms = set(ACCESS_LEVELS[level])
    levels = {perm for granted in ACCESS_LEVELS.values() for perm in granted}
    held = set(permissions.user_agent_perms(agent, user))
    wanted = (held - levels) | perms
    if wanted == held:
        return False
    for perm in perms - held:
        assign_perm(perm, user, agent)
    for perm in (held & levels) - perms:
        remove_perm(perm, user, agent)
    _access_changed(actor, agent, user, verbs.AGENT_ACCESS_GRANTED, held, wanted)
    return True


@transaction.atomic
def agent_access_revoke(*, actor: Actor, agent: Agent, user: Any) -> bool:
    """Remove every permission granted to this person directly on the agent.

    The owner's access is not revocable here: it follows ownership.
    """
    if user.pk == agent.owner_id:
        raise ValidationError("The owner's access follows ownership; change the owner instead.")
    held = sorted(permissions.user_agent_perms(agent, user))
    if not held:
        return False
    for perm in held:
        remove_perm(perm, user, agent)
    _access_changed(actor, agent, user, verbs.AGENT_ACCESS_REVOKED, set(held), set())
    return True


@transaction.atomic
def token_create(
    *, actor: Actor, agent: Agent, environment: str, name: str = "", created_by: Any = None
) -> tuple[AgentToken, str]:
    """Issue a token; the raw token is returned once and never stored."""
    if environment not in agent.environments:
        raise ValidationError({"environment": f"{agent.name} is not registered for {environment}."})
    if agent.status == AgentStatus.RETIRED:
        raise ValidationError("A retired agent cannot be given new tokens.")
    if name == UNDO_TOKEN_NAME and created_by is not None:
        raise ValidationError({"name": f"{name!r} is Oversight's own token; choose another name."})
    raw = tokens.generate(environment)
    token = AgentToken.objects.create(
        agent=agent,
        environment=environment,
        name=name,
        prefix=tokens.visible_prefix(raw),
        token_hash=tokens.token_hash(raw),
        created_by=created_by,
    )
    audit_record(
        actor=actor,
        verb=verbs.TOKEN_CREATED,
        target=agent,
        after={"token": token.prefix, "environment": environment, "name": name},
    )
    return token, raw


@transaction.atomic
def token_revoke(*, actor: Actor, token: AgentToken) -> bool:
    """Revoke at once. False if it was already revoked (nothing recorded)."""
    claimed = AgentToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not claimed:
        return False
    audit_record(
        actor=actor,
        verb=verbs.TOKEN_REVOKED,
        target=token.agent,
        before={"token": token.prefix, "revoked": False},
        after={"token": token.prefix, "revoked": True},
    )
    return True


@transaction.atomic
def token_rotate(
    *, actor: Actor, token: AgentToken, created_by: Any = None
) -> tuple[AgentToken, str]:
    """A new token for the same agent and environment; the old one stops working now."""
    if token.name == UNDO_TOKEN_NAME:
        raise ValidationError(
            "Oversight's undo token is not rotated: revoke it, and the next undo issues another."
        )
    if not token_revoke(actor=actor, token=token):
        raise ValidationError("This token was already revoked.")
    return token_create(
        actor=actor,
        agent=token.agent,
        environment=token.environment,
        name=token.name,
        created_by=created_by,
    )
