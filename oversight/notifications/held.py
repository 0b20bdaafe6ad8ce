"""What people are told of held actions and their expiry: the one-by-one items and
messages, each carrying its person's signed decision link, and the digests that
replace them when an agent's actions come in floods (see constants.DIGEST_AFTER).

``services.notify_action_held`` and ``services.notify_action_expired`` decide who is
told what; this module only words it and builds the messages.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Q
from django.urls import reverse

from oversight.agents.models import Agent
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.notifications import content
from oversight.notifications.constants import (
    DIGEST_AFTER,
    MAX_LINKS_IN_CHAT,
    Channel,
    Kind,
)
from oversight.notifications.links import decision_link_issue
from oversight.notifications.models import Notification, TeamChannels, webhook_host
from oversight.notifications.outbound import Message, distinct_addresses, existing_keys


def _utc(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


# --- inbox items -----------------------------------------------------------------------


def held_item(action: Action, link: str) -> dict[str, Any]:
    """One held action, for one person: ``link`` is their decision link."""
    agent = action.agent
    lines = [f"{action.action} on {action.resource} in {action.environment}."]
    if action.reason:
        lines.append(f"Its reason: {action.reason}")
    held_by = [str(r["name"]) for r in action.deciding_reasons if r.get("name")]
    if held_by:
        lines.append("Held by: " + ", ".join(held_by) + ".")
    lines.append(f"Decide by {_utc(action.expires_at)}, or it is denied.")
    return {
        "kind": Kind.ACTION_HELD,
        "title": f"Approval needed: {action.action} on {action.resource} ({agent.name})",
        "body": "\n".join(lines),
        "link": link,
    }


def held_digest(agent: Agent) -> dict[str, Any]:
    """The one item that keeps count once an agent's held actions come thick and fast."""
    waiting = Action.objects.filter(agent=agent, status=ActionStatus.PENDING).count()
    return {
        "kind": Kind.ACTIONS_WAITING,
        "title": f"{_plural(waiting, 'action', 'actions')} of {agent.name} "
        f"{'is' if waiting == 1 else 'are'} waiting for approval",
        "body": f"{agent.name}'s held actions are coming in quickly, so they are counted "
        "here instead of one item each. Decide them on your approvals page.",
        "link": reverse("approvals:queue"),
    }


def expired_item(action: Action) -> dict[str, Any]:
    return {
        "kind": Kind.ACTION_EXPIRED,
        "title": f"Expired undecided: {action.action} on {action.resource} ({action.agent.name})",
        "body": f"Nobody decided it by its deadline ({_utc(action.expires_at)}), so it "
        "counts as denied: the agent may not run it, and learns so when it asks about it.",
        "link": reverse("approvals:action", args=[action.pk]),
    }


def expired_digest(agent: Agent, *, since: dt.datetime) -> dict[str, Any]:
    expired = Action.objects.filter(
        agent=agent, status=ActionStatus.EXPIRED, finished_at__gte=since
    ).count()
    return {
        "kind": Kind.ACTIONS_EXPIRED,
        "title": f"{_plural(expired, 'held action', 'held actions')} of {agent.name} "
        "expired undecided this hour",
        "body": "Nobody decided them by their deadlines, so they count as denied. Check "
        "that the agent's reviewers are around, or change its hold rules.",
        "link": reverse("agents:detail", args=[agent.slug]),
    }


def escalated_item(action: Action) -> dict[str, Any]:
    return {
        "kind": Kind.ACTION_ESCALATED,
        "title": f"Escalated to admins: {action.action} by {action.agent.name}",
        "body": (
            f"{action.action} on {action.resource} by {action.agent.name} waits for a "
            f"decision: {action.escalation_reason}. Admins may decide it now."
        ),
        "link": reverse("approvals:action", args=[action.pk]),
    }


def escalated_digest(agent: Agent, *, since: dt.datetime) -> dict[str, Any]:
    """The one item that keeps count once an agent's escalations come thick and fast."""
    counts = Action.objects.filter(agent=agent, escalated_at__gte=since).aggregate(
        escalated=Count("pk"), waiting=Count("pk", filter=Q(status=ActionStatus.PENDING))
    )
    escalated, waiting = counts["escalated"], counts["waiting"]
    return {
        "kind": Kind.ACTIONS_ESCALATED,
        "title": f"{_plural(escalated, 'held action', 'held actions')} of {agent.name} "
        "escalated to admins this hour",
        "body": f"They are escalated too quickly to tell one by one; {waiting} of them "
        "still wait. Admins may decide them on the approvals page.",
        "link": reverse("approvals:queue"),
    }


# --- email and webhook -----------------------------------------------------------------


def held_chat_is_digest(*, agent: Agent, since: dt.datetime) -> bool:
    """The team's chat got DIGEST_AFTER of the agent's held actions this window already."""
    sent = Notification.objects.filter(
        agent=agent, kind=Kind.ACTION_HELD, channel=Channel.WEBHOOK, created_at__gte=since
    )
    return sent.count() >= DIGEST_AFTER


def held_emails(action: Action, people: list[Any], *, event: str) -> list[Message]:
    """An email to each person with an address (one per address), with their own link."""
    by_address = {}
    for person in people:
        for address in distinct_addresses([person.email or ""]):
            by_address.setdefault(address.lower(), (address, person))
    keys = {f"{event}:email:{lower}": pair for lower, pair in by_address.items()}
    messages = []
    for key in sorted(keys.keys() - existing_keys(keys)):
        address, person = keys[key]
        link = decision_link_issue(user=person, action=action, channel=Channel.EMAIL)
        payload = content.action_held_payload(action, decision_url=content.absolute_url(link))
        messages.append(Message(Channel.EMAIL, address, key, payload, action.agent))
    return messages


def held_webhook(
    action: Action, approvers: list[Any], *, event: str, channels: TeamChannels
) -> list[Message]:
    """One message for the team's chat, with a decision link for each approver (at most
    MAX_LINKS_IN_CHAT of them): each person follows their own."""
    key = f"{event}:webhook:{channels.team_id}"
    if existing_keys([key]):
        return []
    links = [
        {
            "user": person.get_username(),
            "url": content.absolute_url(
                decision_link_issue(user=person, action=action, channel=Channel.WEBHOOK)
            ),
        }
        for person in approvers[:MAX_LINKS_IN_CHAT]
    ]
    payload = content.action_held_payload(action, links=links)
    host = webhook_host(channels.webhook_url)
    return [Message(Channel.WEBHOOK, host, key, payload, action.agent)]
