"""Writing to people's in-app inboxes, and keeping them readable when events come in
floods: after a few items about one agent in a window, one digest item keeps count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Count
from django.utils import timezone

from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.notifications.constants import DIGEST_AFTER, DIGEST_WINDOW_SECONDS
from oversight.notifications.models import InboxItem


def digest_window(now: dt.datetime) -> tuple[int, dt.datetime]:
    """The window ``now`` falls in: its number (for event names) and its start."""
    number = int(now.timestamp()) // DIGEST_WINDOW_SECONDS
    return number, dt.datetime.fromtimestamp(number * DIGEST_WINDOW_SECONDS, tz=dt.UTC)


def inbox_tell(
    *,
    users: Iterable[Any],
    kind: str,
    title: str,
    body: str,
    link: str,
    event: str,
    team: Team,
    agent: Agent | None = None,
    refresh: bool = False,
) -> None:
    """One item per person for ``event``; telling again creates nothing new.

    With ``refresh`` (a digest that keeps count), a person's existing item is rewritten
    with the new title, body and link, and becomes unread and newest again. Two
    concurrent refreshes both land; the later commit's words stay, which is what a
    count wants.
    """
    people = {u.pk: u for u in users}
    if not people:
        return
    fields = {"kind": kind, "title": title, "body": body, "link": link}
    existing = InboxItem.objects.filter(user_id__in=people, event=event)
    if refresh:
        existing.update(**fields, read_at=None, created_at=timezone.now())
    told = set(existing.values_list("user_id", flat=True))
    new = [
        InboxItem(user=user, event=event, team=team, agent=agent, **fields)
        for pk, user in people.items()
        if pk not in told
    ]
    # A concurrent teller may have created some meanwhile: theirs stand (one per event).
    InboxItem.objects.bulk_create(new, ignore_conflicts=True)


def digested_people(
    *, user_ids: Iterable[int], agent: Agent, kind: str, since: dt.datetime
) -> set[int]:
    """Those already told one by one of DIGEST_AFTER ``kind`` items about ``agent`` since
    ``since``: from now on they get the digest instead.

    Counted in one statement. Two events told at the same instant may both count the
    same number and both be told one by one: one item over the threshold, never a
    person left untold.
    """
    counts = (
        InboxItem.objects.filter(
            user_id__in=list(user_ids), agent=agent, kind=kind, created_at__gte=since
        )
        .values("user_id")
        .annotate(n=Count("pk"))
    )
    return {row["user_id"] for row in counts if row["n"] >= DIGEST_AFTER}
