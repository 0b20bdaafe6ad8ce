"""Choices and tunables for notifications, in one place."""

from __future__ import annotations

from django.db import models


class Kind(models.TextChoices):
    ACTION_HELD = "action.held", "Action held for approval"
    # Told instead of one item per action once an agent's held actions come thick and
    # fast (see DIGEST_AFTER): one item that keeps count.
    ACTIONS_WAITING = "action.held.digest", "Held actions waiting"
    ACTION_EXPIRED = "action.expired", "Held action expired"
    ACTIONS_EXPIRED = "action.expired.digest", "Held actions expired"
    KILLSWITCH_ENGAGED = "killswitch.engaged", "Kill switch engaged"
    KILLSWITCH_RELEASED = "killswitch.released", "Kill switch released"
    TEST = "test", "Test message"
    # General kinds, sent through ``services.notify_people`` with a title, body and link.
    REVIEW_DUE = "review.due", "Re-certification due"
    REVIEW_OVERDUE = "review.overdue", "Re-certification overdue"
    REVIEW_ESCALATED = "review.escalated", "Re-certification escalated"
    AGENT_UNOWNED = "agent.unowned", "Agent unowned"
    AGENT_RETIREMENT_NOTICE = "agent.retirement_notice", "Agent retirement notice"
    AGENT_RETIRED = "agent.retired", "Agent retired"
    AGENT_PAUSED = "agent.paused", "Agent paused"
    ALERT_OPENED = "alert.opened", "Alert opened"
    ALERT_ESCALATED = "alert.escalated", "Alert escalated"
    ACTION_ESCALATED = "action.escalated", "Held action escalated to admins"
    ACTIONS_ESCALATED = "action.escalated.digest", "Held actions escalated to admins"
    RELEASE_AWAITING_APPROVAL = "release.awaiting_approval", "Release awaiting approval"
    ROLLOUT_ROLLED_BACK = "rollout.rolled_back", "Rollout rolled back"
    ROLLOUT_WAITING = "rollout.waiting", "Rollout waiting for a person"
    TOOL_CHANGED = "tool.changed", "MCP tool definition changed"
    REWIND_AWAITING_APPROVAL = "rewind.awaiting_approval", "Rewind awaiting approval"


# The kinds that carry their own title, body and link (``notify_people``).
GENERAL_KINDS = frozenset(
    {
        Kind.REVIEW_DUE,
        Kind.REVIEW_OVERDUE,
        Kind.REVIEW_ESCALATED,
        Kind.AGENT_UNOWNED,
        Kind.AGENT_RETIREMENT_NOTICE,
        Kind.AGENT_RETIRED,
        Kind.AGENT_PAUSED,
        Kind.ALERT_OPENED,
        Kind.ALERT_ESCALATED,
        Kind.ACTIONS_WAITING,
        Kind.ACTION_EXPIRED,
        Kind.ACTIONS_EXPIRED,
        Kind.ACTION_ESCALATED,
        Kind.ACTIONS_ESCALATED,
        Kind.RELEASE_AWAITING_APPROVAL,
        Kind.ROLLOUT_ROLLED_BACK,
        Kind.ROLLOUT_WAITING,
        Kind.TOOL_CHANGED,
        Kind.REWIND_AWAITING_APPROVAL,
    }
)


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class State(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


# Deliveries: the first try plus four retries, 15 s, 30 s, 60 s and 120 s apart.
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 15
WEBHOOK_TIMEOUT_SECONDS = 5
EMAIL_TIMEOUT_SECONDS = 10
# A claimed row is left alone this long: longer than any one send can take, so a second
# worker never sends it concurrently, yet a crashed worker's row is taken up again.
CLAIM_SECONDS = 120
# Pending rows older than this were lost on the way to the broker (it was down at commit,
# or a worker died); the beat sweep queues them again. Longer than the whole backoff.
STALE_AFTER_SECONDS = 15 * 60

# Long lists (a global kill switch) are cut short in messages; the total is still given.
MAX_AGENTS_LISTED = 20
RECENT_NOTIFICATIONS = 20

# The page a reviewer decides a held action on. Until it exists, links go to the agent.
ACTION_URL_NAME = "approvals:action"

# Digests: within one window, a person is told of an agent's first DIGEST_AFTER held
# (or expired) actions one by one; after that one digest item keeps count, and one
# digest email goes out per window, so 1,000 held actions make a handful of items.
DIGEST_AFTER = 3
DIGEST_WINDOW_SECONDS = 60 * 60

# Signed decision links: the salt keeps these signatures apart from any other use of
# SECRET_KEY; chat messages list at most this many people's links.
DECISION_LINK_SALT = "oversight.notifications.decision-link"
MAX_LINKS_IN_CHAT = 10

# The in-app inbox: items per page, and the longest title and event name kept.
INBOX_PAGE_SIZE = 50
TITLE_MAX_LENGTH = 200
EVENT_MAX_LENGTH = 200

SIGNATURE_HEADER = "X-Oversight-Signature"
TIMESTAMP_HEADER = "X-Oversight-Timestamp"
