"""Signed, single-use links that open a held action's decision for one person.

A link is ``/links/<token>/``, the token signed with SECRET_KEY (Django's signing,
under its own salt), naming a ``DecisionLink`` row, the person and the action. The
person follows it, logs in if needed, and lands on the action's page, where the
Approve and Deny buttons are POST forms with CSRF: following a link decides nothing.
Nor does it grant anything: the action's page and the vote check the person's
permissions as they are then.

The row makes a link single-use and mortal: it is spent the first time its person
follows it (a conditional update, so two tabs cannot both spend it), and it dies with
the action (its deadline, or the action being decided). A spent, expired or foreign
link says so and offers the action's ordinary page, which lets in whoever may see it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.urls import reverse
from django.utils import timezone

from oversight.agents.constants import VIEW
from oversight.agents.selectors import agents_with_perm
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.notifications.constants import DECISION_LINK_SALT, Kind
from oversight.notifications.models import DecisionLink, InboxItem


def decision_link_issue(*, user: Any, action: Action, channel: str) -> str:
    """A new link for ``user`` to decide ``action``: its site path (``/links/…/``)."""
    link = DecisionLink.objects.create(
        user=user, action=action, channel=channel, expires_at=action.expires_at
    )
    token = signing.dumps(
        {"l": link.pk.hex, "u": user.pk, "a": action.pk.hex}, salt=DECISION_LINK_SALT
    )
    return reverse("decision-link", args=[token])


class Outcome:
    """What following a link came to; anything but OPEN renders an explanation."""

    OPEN = "open"  # spent now; go to the action's page
    INVALID = "invalid"  # not signed by us, or altered
    FOREIGN = "foreign"  # sent to someone else than who is logged in
    USED = "used"
    EXPIRED = "expired"
    DECIDED = "decided"  # the action is no longer waiting
    NOT_FOUND = "not_found"  # the person may no longer see the action


@dataclass(frozen=True)
class Redemption:
    outcome: str
    link: DecisionLink | None = None

    @property
    def action_id(self) -> uuid.UUID | None:
        return self.link.action_id if self.link is not None else None


def _unsign(token: str) -> DecisionLink | None:
    try:
        data = signing.loads(token, salt=DECISION_LINK_SALT)
        link_id, user_id, action_id = uuid.UUID(data["l"]), int(data["u"]), uuid.UUID(data["a"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return (
        DecisionLink.objects.select_related("user", "action")
        .filter(pk=link_id, user_id=user_id, action_id=action_id)
        .first()
    )


def decision_link_redeem(*, user: Any, token: str) -> Redemption:
    """Spend the link if it is ``user``'s, unused, and its action still waits.

    A link followed by the wrong person is not spent, so its person can still use it.
    """
    link = _unsign(token)
    if link is None:
        return Redemption(Outcome.INVALID)
    if link.user_id != user.pk:
        return Redemption(Outcome.FOREIGN, link)
    visible = agents_with_perm(user=user, perm=VIEW)
    if not Action.objects.filter(pk=link.action_id, agent__in=visible).exists():
        return Redemption(Outcome.NOT_FOUND, link)
    if link.used_at is not None:
        return Redemption(Outcome.USED, link)
    if link.action.status != ActionStatus.PENDING:
        return Redemption(Outcome.DECIDED, link)
    now = timezone.now()
    if link.expires_at is not None and link.expires_at <= now:
        return Redemption(Outcome.EXPIRED, link)
    # Two tabs following the same link at once: one update wins, the other is told.
    spent = DecisionLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now)
    if not spent:
        link.refresh_from_db(fields=["used_at"])
        return Redemption(Outcome.USED, link)
    # The item that carried the link has done its job.
    InboxItem.objects.filter(
        user=user, event=f"{Kind.ACTION_HELD}:{link.action_id}", read_at__isnull=True
    ).update(read_at=now)
    return Redemption(Outcome.OPEN, link)
