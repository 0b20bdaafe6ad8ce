"""Messages on their way out: one Notification row per (event, channel, recipient),
each send queued after the commit that created it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import transaction

from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.gateway.models import Action
from oversight.notifications.models import Notification
from oversight.notifications.tasks import send_notification


@dataclass(frozen=True)
class Message:
    channel: str
    recipient: str
    dedupe_key: str
    payload: dict[str, Any]
    agent: Agent | None = None


def create_and_queue(
    messages: list[Message], *, kind: str, team: Team, action: Action | None = None
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


def existing_keys(keys: Iterable[str]) -> set[str]:
    """The dedupe keys among ``keys`` already used: their messages were created before."""
    return set(
        Notification.objects.filter(dedupe_key__in=list(keys)).values_list("dedupe_key", flat=True)
    )


def distinct_addresses(addresses: Iterable[str]) -> list[str]:
    """Distinct addresses, case-insensitively: one inbox is told once."""
    seen: dict[str, str] = {}
    for address in addresses:
        if address.strip():
            seen.setdefault(address.strip().lower(), address.strip())
    return list(seen.values())
