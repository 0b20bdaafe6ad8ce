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
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from oversight.accounts.models import Team
from oversight.agents.models import Agent
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
from oversight.notifications.models import (
    InboxItem,
    Notification,
    TeamChannels,
    new_webhook_secret,
    webhook_host,
)
from oversight.notifications.selectors import (
    action_reviewers,
    agents_in_switch_scope,
    channels_by_team,
    team_channels_get,
)
from oversight.notifications.tasks import send_notification

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
    }


@transaction.atomic
def team_channels_update(
    *, actor: Actor, team: Team, email_enabled: bool, webhook_url: str
) -> TeamChannels:
    channels, created = _locked_channels(team)
    before = None if created else _audit_view(channels)
    channels.email_enabled, channels.webhook_url = email_enabled, webhook_url.strip()
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


@dataclass(frozen=True)
class _Message:
    channel: str
    recipient: str
    dedupe_key: str
    payload: dict[str, Any]
    agent: Agent | None = None


def _create_and_queue(
    messages: list[_Message], *, kind: str, team: Team, action: Action | None = None
) -> list[Notification]:
    """Rows for messages not created before (by dedupe key); each send is queued after
    commit. ``robust``: a broker outage must not turn a committed change into an
    error, the beat sweep queues those rows again."""
    created_rows = []
    for m in messages:
        row, created = Notification.objects.get_or_create(
            dedupe_key=m.dedupe_key,
            defaults={
                "kind": kind,
                "channel": m.channel,
                "recipient": m.recipient,
                "team": team,
                "agent": m.agent,
                "action": action,
                "payload": m.payload,
            },
        )
        if created:
            created_rows.append(row)
            transaction.on_commit(partial(send_notification.delay, row.pk), robust=True)
    return created_rows


def _emails(users: Any) -> list[str]:
    """Distinct addresses, case-insensitively: one inbox is told once."""
    return _distinct_addresses(users.exclude(email="").values_list("email", flat=True))


def _distinct_addresses(addresses: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        if address.strip():
            seen.setdefault(address.strip().lower(), address.strip())
    return list(seen.values())


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
) -> list[Notification]:
    """Tell people about something: an inbox item each, email, and the team's webhook.

    Each active user among ``users`` gets one inbox item; each with an address gets one
    email if the team's email channel is on; the team's webhook (if it has a URL and
    ``webhook``) gets one message. ``event`` names what happened: calling again with
    the same event creates nothing new, so periodic jobs may repeat themselves. Sends
    are queued after commit; returns the email and webhook notifications created.
    """
    _check_general(kind=kind, link=link, event=event)
    if len(title) > TITLE_MAX_LENGTH:
        title = title[: TITLE_MAX_LENGTH - 1] + "…"
    people = [u for u in {u.pk: u for u in users}.values() if u.is_active]
    for user in people:
        InboxItem.objects.get_or_create(
            user=user,
            event=event,
            defaults={
                "kind": kind,
                "title": title,
                "body": body,
                "link": link,
                "agent": agent,
                "team": team,
            },
        )

    channels = team_channels_get(team=team)
    if channels is None:
        return []
    payload = content.general_payload(
        kind=kind, team=team, title=title, body=body, link=link, agent=agent
    )
    messages = []
    if channels.email_enabled:
        for address in _distinct_addresses(getattr(u, "email", "") for u in people):
            key = f"{event}:email:{address.lower()}"
            messages.append(_Message(Channel.EMAIL, address, key, payload, agent))
    if webhook and channels.webhook_url:
        key = f"{event}:webhook:{team.pk}"
        host = webhook_host(channels.webhook_url)
        messages.append(_Message(Channel.WEBHOOK, host, key, payload, agent))
    return _create_and_queue(messages, kind=kind, team=team)


# --- the in-app inbox ----------------------------------------------------------------


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
    """Tell the eligible reviewers of a held action; returns the notifications created.

    Call after the action's transaction has committed:
    ``transaction.on_commit(partial(notify_action_held, action_id=action.pk), robust=True)``.
    Nothing happens when the action is gone or no longer pending, or its team has no
    channel on. Email goes to each reviewer (see ``selectors.action_reviewers``) with
    an address, if the team's email is on; one webhook message if it has a URL.
    """
    action = Action.objects.select_related("agent__team").filter(pk=action_id).first()
    if action is None or action.status != ActionStatus.PENDING:
        return []
    team = action.agent.team
    channels = team_channels_get(team=team)
    if channels is None:
        return []
    payload = content.action_held_payload(action)
    event = f"{Kind.ACTION_HELD}:{action.pk}"
    messages = []
    if channels.email_enabled:
        for address in _emails(action_reviewers(agent=action.agent)):
            key = f"{event}:email:{address.lower()}"
            messages.append(_Message(Channel.EMAIL, address, key, payload, action.agent))
    if channels.webhook_url:
        key = f"{event}:webhook:{team.pk}"
        host = webhook_host(channels.webhook_url)
        messages.append(_Message(Channel.WEBHOOK, host, key, payload, action.agent))
    return _create_and_queue(messages, kind=Kind.ACTION_HELD, team=team, action=action)


@transaction.atomic
def notify_killswitch(*, switch_id: int, engaged: bool) -> list[Notification]:
    """Tell the owners of the agents in a switch's scope, and each affected team's webhook.

    Call after the press has committed:
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
        message = _Message(Channel.EMAIL, address, f"{event}:email:{address}", payload, one_agent)
        created += _create_and_queue([message], kind=kind, team=team)

    for team_id in sorted(team_ids):
        if team_id not in channels or not channels[team_id].webhook_url:
            continue
        team = teams[team_id]
        theirs = [a for a in agents if a.team_id == team_id]
        payload = content.killswitch_payload(switch, engaged=engaged, team=team, agents=theirs)
        host = webhook_host(channels[team_id].webhook_url)
        one_agent = theirs[0] if len(theirs) == 1 else None
        message = _Message(Channel.WEBHOOK, host, f"{event}:webhook:{team_id}", payload, one_agent)
        created += _create_and_queue([message], kind=kind, team=team)
    return created


@transaction.atomic
def notification_test_send(*, actor: Actor, team: Team) -> Notification:
    """Queue a test message to the team's webhook, so they can check their receiver."""
    channels = team_channels_get(team=team)
    if channels is None or not channels.webhook_url:
        raise ValidationError("Set a webhook URL first.")
    payload = content.test_payload(team, requested_by=actor.label)
    message = _Message(
        Channel.WEBHOOK,
        webhook_host(channels.webhook_url),
        f"{Kind.TEST}:{uuid.uuid4().hex}",
        payload,
    )
    (notification,) = _create_and_queue([message], kind=Kind.TEST, team=team)
    audit_record(
        actor=actor,
        verb=verbs.NOTIFICATION_TEST_QUEUED,
        target=notification,
        after={"team": team.slug, "recipient": notification.recipient},
    )
    return notification
