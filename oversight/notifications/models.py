"""Where a team wants to hear about held actions and kill switches, what was sent, and each
person's in-app inbox."""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models

from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.gateway.models import Action
from oversight.notifications.constants import (
    EVENT_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Channel,
    Kind,
    State,
)
from oversight.notifications.webhook_http import validate_webhook_url


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


def webhook_host(url: str) -> str:
    return urlsplit(url).hostname or ""


class TeamChannels(models.Model):
    """How one team is told: email to eligible people on or off, and one optional webhook.

    No row (or email off and no URL) means the team is told nothing.
    ``webhook_secret`` signs every webhook body (HMAC-SHA256); it is shown to the team on
    its settings page and can be regenerated there.
    """

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="channels")
    email_enabled = models.BooleanField(
        "Email", default=False, help_text="Email the people concerned."
    )
    webhook_url = models.URLField(
        "Webhook URL",
        max_length=500,
        blank=True,
        validators=[validate_webhook_url],
        help_text="Slack-compatible incoming webhook; leave empty for none.",
    )
    webhook_secret = models.CharField(max_length=64, default=new_webhook_secret)
    # Undo (docs/rewind.md): where Oversight sends the team's agents' compensations to be
    # run, signed with the same secret, when they have no compensator of their own.
    compensation_webhook_url = models.URLField(
        "Compensation webhook URL",
        max_length=500,
        blank=True,
        validators=[validate_webhook_url],
        help_text="Runs undos of the team's agents; leave empty to use their SDK workers.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "team channels"
        verbose_name_plural = "team channels"

    def __str__(self) -> str:
        return f"notification channels of {self.team}"

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.webhook_url)


class Notification(models.Model):
    """One message to one recipient on one channel about one event, and its delivery.

    ``dedupe_key`` names the (event, channel, recipient): creating the same notification
    twice finds the first one. Sends claim the row with a conditional update, so a
    retried or duplicated task never sends a message that was already sent.
    """

    kind = models.CharField(max_length=30, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # An email address, or the webhook URL's host (the URL itself may hold a token).
    recipient = models.CharField(max_length=254)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="notifications")
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.ForeignKey(
        Action, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    # The machine-readable event, fixed when the notification is created; every attempt
    # renders the same message from it.
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Set while a worker holds the row; see constants.CLAIM_SECONDS.
    claimed_until = models.DateTimeField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=500, unique=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="notification_team_recent"),
            models.Index(
                fields=["created_at"],
                condition=models.Q(state="pending"),
                name="notification_pending",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=State.values), name="notification_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel} to {self.recipient} ({self.state})"


class InboxItem(models.Model):
    """One thing one person was told, shown in the app until they mark it read.

    ``event`` names what happened (``review.due:refund-bot:2026-05-01``); a person gets
    one item per event however often it is reported, so periodic jobs may repeat.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_items"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    body = models.TextField(blank=True)
    # A site path (``/reviews/refund-bot/``), never an outside URL.
    link = models.CharField(max_length=500, blank=True)
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=EVENT_MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="inbox_user_recent"),
            # The nav badge counts these on every page: a small partial index.
            models.Index(
                fields=["user"], condition=models.Q(read_at__isnull=True), name="inbox_unread"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["user", "event"], name="inbox_one_per_event"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}: {self.title}"

    @property
    def unread(self) -> bool:
        return self.read_at is None


class DecisionLink(models.Model):
    """One signed link, sent to one person, that opens one held action's decision.

    The link itself (see ``links.py``) is signed with SECRET_KEY and names this row,
    the person and the action; the row makes it single-use (``used_at``, claimed with a
    conditional update) and lets it die with the action (``expires_at``). Following a
    link grants nothing: the action's page and the vote check permissions as usual.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="decision_links"
    )
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="decision_links")
    channel = models.CharField(max_length=10)  # inbox, email or webhook: where it was sent
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"decision link for {self.user_id} on {self.action_id}"
