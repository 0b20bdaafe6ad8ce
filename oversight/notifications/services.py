"""Writes: a team's channels (audited), the notifications events give rise to, and
people's in-app inboxes.

``notify_action_held`` and ``notify_killswitch`` are called after the change they
report has committed (``transaction.on_commit``); they take ids, create one
Notification per recipient and channel, and queue each send after their own commit.
Both are idempotent: calling one twice for the same event creates nothing new.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.approvals.eligibility import eligible_approvers
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.killswitch.models import KillSwitch
from oversight.notifications import content
from oversight.notifications.constants import (
    EVENT_MAX_LENGTH,
    GENERAL_KINDS,
    TITLE_MAX_LENGTH,
    Channel,
    Kind,
)
from oversight.notifications.held import (
    escalated_digest,
    escalated_item,
    expired_digest,
    expired_item,
    held_chat_is_digest,
    held_digest,
    held_emails,
    held_item,
    held_webhook,
)
from oversight.notifications.inbox import digest_window, digested_people, inbox_tell
from oversight.notifications.links import decision_link_issue
from oversight.notifications.models import (
    InboxItem,
    Notification,
    TeamChannels,
    new_webhook_secret,
    webhook_host,
)
from oversight.notifications.outbound import Message, create_and_queue, distinct_addresses
from oversight.notifications.selectors import (
    agents_in_switch_scope,
    channels_by_team,
    team_channels_get,
)

# --- channels ------------------------------------------------------------------------


def _locked_channels(team: Team) -> tuple[TeamChannels, bool]:
    """The team's row, created if missing, locked until this transaction ends."""
    _, created = TeamChannels.objects.get_or_create(team=team)
    return TeamChannels.objects.select_for_update().get(team=team), created


def _redacted_url(url: str) -> str:
    """For the audit log, which is kept forever: incoming-webhook URLs often carry their
    credential in the path (Slack's do). Scheme and host, and a fingerprint that shows
    when the URL changed."""
    if not url:
        return ""
    parts = urlsplit(url)
    fingerprint = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{parts.scheme}://{parts.netloc}/… (sha256 {fingerprint})"


def _audit_view(channels: TeamChannels) -> dict[str, Any]:
    """What the log records of the channels: never the secret, never the full URL."""
    return {
        "email_enabled": channels.email_enabled,
        "webhook_url": _redacted_url(channels.webhook_url),
        "compensation_webhook_url": _redacted_url(channels.compensation_webhook_url),
    }


@transaction.atomic
def team_channels_update(
    *,
    actor: Actor,
    team: Team,
    email_enabled: bool,
    webhook_url: str,
    compensation_webhook_url: str | None = None,
) -> TeamChannels:
    """``compensation_webhook_url`` None: left as it is."""
    channels, created = _locked_channels(team)
    before = None if created else _audit_view(channels)
    channels.email_enabled, channels.webhook_url = email_enabled, webhook_url.strip()
    if compensation_webhook_url is not None:
        channels.compensation_webhook_url = compensation_webhook_url.strip()
    channels.full_clean()
    channels.save()
    after = _audit_view(channels)
    if before != after:
        audit_record(
            actor=actor,
            verb=verbs.TEAM_CHANNELS_UPDATED,
            target=channels,
            before=before,
            after=after,
        )
    return channels


@transaction.atomic
def team_channels_secret_regenerate(*, actor: Actor, team: Team) -> TeamChannels:
    """A new signing secret; receivers must be given it, as the old one stops working."""
    channels, _ = _locked_channels(team)
    channels.webhook_secret = new_webhook_secret()
    channels.save(update_fields=["webhook_secret", "updated_at"])
    audit_record(actor=actor, verb=verbs.TEAM_CHANNELS_SECRET_REGENERATED, target=channels)
    return channels


# --- notifications -------------------------------------------------------------------


def _check_general(*, kind: str, link: str, event: str) -> None:
    if kind not in GENERAL_KINDS:
        raise ValueError(f"notify_people does not send {kind!r} notifications.")
    if link and (not link.startswith("/") or link.startswith("//")):
        raise ValueError(f"link must be a path on this site, not {link!r}.")
    if not event or len(event) > EVENT_MAX_LENGTH:
        raise ValueError(f"event must name the event in 1 to {EVENT_MAX_LENGTH} characters.")


@transaction.atomic
def notify_people(
    *,
    kind: str,
    team: Team,
    users: Iterable[AbstractBaseUser],
    title: str,
    body: str,
    link: str,
    event: str,
    agent: Agent | None = None,
    webhook: bool = True,
    refresh: bool = False,
) -> list[Notification]:
    """Tell people about something: an inbox item each, email, and the team's webhook.

    Each active user among ``users`` gets one inbox item; each with an address gets one
    email if the team's email channel is on; the team's webhook (if it has a URL and
    ``webhook``) gets one message. ``event`` names what happened: calling again with
    the same event creates nothing new, so periodic jobs may repeat themselves. Sends
    are queued after commit; returns the email and webhook notifications created.

    ``refresh``: the event is a digest that keeps count (``inbox.inbox_tell``); each
    person's item is rewritten and unread again, while email and webhook, which cannot
    be taken back, still go out once per event.
    """
    _check_general(kind=kind, link=link, event=event)
    if len(title) > TITLE_MAX_LENGTH:
        title = title[: TITLE_MAX_LENGTH - 1] + "…"
    people = [u for u in {u.pk: u for u in users}.values() if u.is_active]
    inbox_tell(
        users=people,
        kind=kind,
        title=title,
        body=body,
        link=link,
        event=event,
        team=team,
        agent=agent,
        refresh=refresh,
    )

    channels = team_channels_get(team=team)
    if channels is None:
        return []
    payload = content.general_payload(
        kind=kind, team=team, title=title, body=body, link=link, agent=agent
    )
    messages = []
    if channels.email_enabled:
        for address in distinct_addresses(getattr(u, "email", "") for u in people):
            key = f"{event}:email:{address.lower()}"
            messages.append(Message(Channel.EMAIL, address, key, payload, agent))
    if webhook and channels.webhook_url:
        key = f"{event}:webhook:{team.pk}"
        host = webhook_host(channels.webhook_url)
        messages.append(Message(Channel.WEBHOOK, host, key, payload, agent))
    return create_and_queue(messages, kind=kind, team=team)


# --- the in-app inbox ----------------------------------------------------------------


def notify_people_after_commit(**message: Any) -> None:
    """``notify_people(**message)`` once the current transaction commits, never if it
    rolls back: a service tells people of what its own transaction did (a rollout rolled
    back, a release or a rewind that awaits a second person)."""
    from oversight.live.publish import after_commit

    after_commit(lambda: notify_people(**message))


def inbox_item_mark_read(*, user: Any, item_id: int) -> InboxItem:
    """Mark one of the user's own items read; someone else's is not found (404)."""
    item = InboxItem.objects.get(pk=item_id, user=user)
    if item.read_at is None:
        item.read_at = timezone.now()
        item.save(update_fields=["read_at"])
    return item


def inbox_mark_all_read(*, user: Any) -> int:
    """Mark every unread item of the user read; returns how many were."""
    return InboxItem.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


@transaction.atomic
def notify_action_held(*, action_id: uuid.UUID | str) -> list[Notification]:
    """Tell the people who may decide a held action; returns the messages created.

    Call after the action's transaction has committed:
    ``transaction.on_commit(partial(notify_action_held, action_id=action.pk), robust=True)``.
    Nothing happens when the action is gone or no longer pending. Each eligible
    approver (``approvals.eligibility.eligible_approvers``) gets an inbox item and, if
    the team's email is on, an email, each with their own signed decision link; the
    team's webhook gets one message with a link per approver. Within one window, past
    an agent's first DIGEST_AFTER held actions, a person gets the agent's one digest
    instead ("12 actions of Refund bot are waiting"), and so does the webhook.
    """
    action = Action.objects.select_related("agent__team").filter(pk=action_id).first()
    if action is None or action.status != ActionStatus.PENDING:
        return []
    if action.awaits_tool_acceptance:  # nobody may approve it yet: its owner is told
        return []  # (agents/tool_pins.py), and its reviewers once the tool is accepted
    agent, team = action.agent, action.agent.team
    event = f"{Kind.ACTION_HELD}:{action.pk}"
    window, since = digest_window(timezone.now())
    approvers = eligible_approvers(action)
    told = set(InboxItem.objects.filter(event=event).values_list("user_id", flat=True))
    untold = [p for p in approvers if p.pk not in told]
    digested = digested_people(
        user_ids=[p.pk for p in untold], agent=agent, kind=Kind.ACTION_HELD, since=since
    )
    one_by_one = [p for p in untold if p.pk not in digested]
    for person in one_by_one:
        link = decision_link_issue(user=person, action=action, channel="inbox")
        inbox_tell(users=[person], event=event, team=team, agent=agent, **held_item(action, link))

    channels = team_channels_get(team=team)
    chat_digest = bool(channels and channels.webhook_url) and held_chat_is_digest(
        agent=agent, since=since
    )
    created: list[Notification] = []
    if digested or chat_digest:
        created += notify_people(
            users=[p for p in untold if p.pk in digested],
            team=team,
            agent=agent,
            event=f"{Kind.ACTIONS_WAITING}:{agent.pk}:{window}",
            refresh=True,
            webhook=chat_digest,
            **held_digest(agent),
        )
    if channels is None:
        return created
    messages = []
    if channels.email_enabled:
        messages += held_emails(action, one_by_one, event=event)
    if channels.webhook_url and not chat_digest:
        messages += held_webhook(action, approvers, event=event, channels=channels)
    return created + create_and_queue(messages, kind=Kind.ACTION_HELD, team=team, action=action)


def _each_or_digest(
    *,
    action: Action,
    people: list[Any],
    kind: str,
    digest_kind: str,
    item: Callable[[Action], dict[str, Any]],
    digest: Callable[..., dict[str, Any]],
    webhook: bool = True,
) -> list[Notification]:
    """Tell ``people`` of ``action``, each with its own item; past DIGEST_AFTER items of
    ``kind`` about its agent in this window, a person gets the agent's one digest that
    keeps count instead. Those told of this action already are not told again."""
    agent = action.agent
    event = f"{kind}:{action.pk}"
    told = set(InboxItem.objects.filter(event=event).values_list("user_id", flat=True))
    people = [p for p in people if p.is_active and p.pk not in told]
    window, since = digest_window(timezone.now())
    digested = digested_people(user_ids=[p.pk for p in people], agent=agent, kind=kind, since=since)
    sent: list[Notification] = []
    each = [p for p in people if p.pk not in digested]
    if each or not digested:  # (with nobody to tell, the webhook still hears of it)
        sent += notify_people(
            users=each, team=agent.team, agent=agent, event=event, webhook=webhook, **item(action)
        )
    if digested:
        sent += notify_people(
            users=[p for p in people if p.pk in digested],
            team=agent.team,
            agent=agent,
            event=f"{digest_kind}:{agent.pk}:{window}",
            refresh=True,
            webhook=webhook,
            **digest(agent, since=since),
        )
    return sent


@transaction.atomic
def notify_action_expired(*, action_id: uuid.UUID | str) -> list[Notification]:
    """Tell the agent's owner that a held action expired undecided (digested when many).

    Call after the expiry has committed. Inbox, and email when the team's email is on;
    not the webhook, whose readers saw the action held. Past DIGEST_AFTER expiries of
    the agent in a window, the owner's one digest keeps count instead.
    """
    action = Action.objects.select_related("agent__team", "agent__owner").filter(pk=action_id)
    action = action.first()
    if action is None or action.status != ActionStatus.EXPIRED:
        return []
    if not action.agent.owner.is_active:
        return []
    return _each_or_digest(
        action=action,
        people=[action.agent.owner],
        kind=Kind.ACTION_EXPIRED,
        digest_kind=Kind.ACTIONS_EXPIRED,
        item=expired_item,
        digest=expired_digest,
        webhook=False,
    )


@transaction.atomic
def notify_action_escalated(
    *, action_id: uuid.UUID | str, users: Iterable[AbstractBaseUser]
) -> list[Notification]:
    """Tell ``users`` (the admins) that a held action was escalated to them (digested when
    many, as expiries are). Call after the escalation has committed."""
    action = Action.objects.select_related("agent__team").filter(pk=action_id).first()
    if action is None or action.status != ActionStatus.PENDING:
        return []
    return _each_or_digest(
        action=action,
        people=list(users),
        kind=Kind.ACTION_ESCALATED,
        digest_kind=Kind.ACTIONS_ESCALATED,
        item=escalated_item,
        digest=escalated_digest,
    )


@transaction.atomic
def notify_killswitch(*, switch_id: int, engaged: bool) -> list[Notification]:
    """Tell the owners of the agents in a switch's scope, and each affected team's webhook.

    Each owner gets one inbox item per press naming their agents in scope. Call after
    the press has committed:
    ``transaction.on_commit(partial(notify_killswitch, switch_id=s.pk, engaged=True),
    robust=True)``. Each owner gets one email however many of their agents are in scope
    (only agents whose team has email on count); each team with a webhook URL gets one
    message listing its agents. A press is told once: it is named by the switch and
    the time it was pressed.
    """
    switch = (
        KillSwitch.objects.select_related("team", "agent", "changed_by")
        .filter(pk=switch_id)
        .first()
    )
    if switch is None:
        return []
    kind = Kind.KILLSWITCH_ENGAGED if engaged else Kind.KILLSWITCH_RELEASED
    press = switch.changed_at.isoformat() if switch.changed_at else "unknown"
    event = f"{kind}:{switch.pk}:{press}"
    agents = list(agents_in_switch_scope(switch=switch))
    team_ids = {a.team_id for a in agents} | ({switch.team_id} if switch.team_id else set())
    channels = channels_by_team(team_ids=team_ids)
    teams = Team.objects.in_bulk(team_ids)
    created: list[Notification] = []

    # Every owner's inbox, whatever the team's channels: one item per press.
    owners: dict[int, list[Agent]] = {}
    for agent in agents:
        if agent.owner.is_active:
            owners.setdefault(agent.owner_id, []).append(agent)
    for owned in owners.values():
        item = content.killswitch_item(switch, engaged=engaged, agents=owned)
        inbox_tell(users=[owned[0].owner], kind=kind, event=event, team=owned[0].team, **item)

    by_owner: dict[str, list[Agent]] = {}
    for agent in agents:
        team_channels = channels.get(agent.team_id)
        if team_channels is None or not team_channels.email_enabled:
            continue
        if agent.owner.is_active and agent.owner.email.strip():
            by_owner.setdefault(agent.owner.email.strip().lower(), []).append(agent)
    for address, owned in by_owner.items():
        team = owned[0].team  # agents are ordered by team: an owner's first team
        payload = content.killswitch_payload(switch, engaged=engaged, team=team, agents=owned)
        one_agent = owned[0] if len(owned) == 1 else None
        message = Message(Channel.EMAIL, address, f"{event}:email:{address}", payload, one_agent)
        created += create_and_queue([message], kind=kind, team=team)

    for team_id in sorted(team_ids):
        if team_id not in channels or not channels[team_id].webhook_url:
            continue
        team = teams[team_id]
        theirs = [a for a in agents if a.team_id == team_id]
        payload = content.killswitch_payload(switch, engaged=engaged, team=team, agents=theirs)
        host = webhook_host(channels[team_id].webhook_url)
        one_agent = theirs[0] if len(theirs) == 1 else None
        message = Message(Channel.WEBHOOK, host, f"{event}:webhook:{team_id}", payload, one_agent)
        created += create_and_queue([message], kind=kind, team=team)
    return created


@transaction.atomic
def notification_test_send(*, actor: Actor, team: Team) -> Notification:
    """Queue a test message to the team's webhook, so they can check their receiver."""
    channels = team_channels_get(team=team)
    if channels is None or not channels.webhook_url:
        raise ValidationError("Set a webhook URL first.")
    payload = content.test_payload(team, requested_by=actor.label)
    message = Message(
        Channel.WEBHOOK,
        webhook_host(channels.webhook_url),
        f"{Kind.TEST}:{uuid.uuid4().hex}",
        payload,
    )
    (notification,) = create_and_queue([message], kind=Kind.TEST, team=team)
    audit_record(
        actor=actor,
        verb=verbs.NOTIFICATION_TEST_QUEUED,
        target=notification,
        after={"team": team.slug, "recipient": notification.recipient},
    )
    return notification
