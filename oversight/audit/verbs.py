"""Every audit verb, in one place. Verbs are `<noun>.<past participle>`."""

from __future__ import annotations

AGENT_CREATED = "agent.created"
AGENT_UPDATED = "agent.updated"
AGENT_ACCESS_GRANTED = "agent.access_granted"
AGENT_ACCESS_REVOKED = "agent.access_revoked"
TOKEN_CREATED = "token.created"
TOKEN_REVOKED = "token.revoked"
PERSONAL_TOKEN_CREATED = "personal_token.created"
PERSONAL_TOKEN_REVOKED = "personal_token.revoked"
GRANT_CREATED = "grant.created"
GRANT_UPDATED = "grant.updated"
GRANT_DELETED = "grant.deleted"
RULE_CREATED = "rule.created"
RULE_UPDATED = "rule.updated"
RULE_DELETED = "rule.deleted"
LIMIT_CREATED = "limit.created"
LIMIT_UPDATED = "limit.updated"
LIMIT_DELETED = "limit.deleted"
KILLSWITCH_ENGAGED = "killswitch.engaged"
KILLSWITCH_RELEASED = "killswitch.released"
ACTION_DECIDED = "action.decided"
ACTION_REPORTED = "action.reported"
ACTION_EXPIRED = "action.expired"
ACTION_VOTED = "action.voted"
ACTION_CANCELLED = "action.cancelled"
ACTION_ESCALATED = "action.escalated"
ACTION_ACKNOWLEDGED = "action.acknowledged"
ACTION_STARTED = "action.started"
TEAM_REVIEWER_ADDED = "team.reviewer_added"
TEAM_REVIEWER_REMOVED = "team.reviewer_removed"
TEAM_CREATED = "team.created"
TEAM_UPDATED = "team.updated"
TEAM_MEMBER_ADDED = "team.member_added"
# A person's roles, teams or standing (active, staff, superuser) changed in the admin.
USER_ACCESS_CHANGED = "user.access_changed"
USER_CREATED = "user.created"
AUDIT_EXPORTED = "audit.exported"
AUDIT_VERIFICATION_STARTED = "audit.verification_started"
TEAM_CHANNELS_UPDATED = "team_channels.updated"
TEAM_CHANNELS_SECRET_REGENERATED = "team_channels.secret_regenerated"
NOTIFICATION_TEST_QUEUED = "notification.test_queued"
ALERT_OPENED = "alert.opened"
ALERT_ESCALATED = "alert.escalated"
ALERT_ACKNOWLEDGED = "alert.acknowledged"
ALERT_RESOLVED = "alert.resolved"
AGENT_HOLD_SET = "agent.hold_set"
AGENT_HOLD_CLEARED = "agent.hold_cleared"
REVIEW_COMPLETED = "review.completed"
AGENT_RETIRED = "agent.retired"
AGENT_UNOWNED_FLAGGED = "agent.unowned_flagged"
AGENT_UNOWNED_CLEARED = "agent.unowned_cleared"
AGENT_RETIREMENT_NOTICE_GIVEN = "agent.retirement_notice_given"
AGENT_RETIREMENT_NOTICE_WITHDRAWN = "agent.retirement_notice_withdrawn"
TOOL_PINNED = "tool.pinned"
TOOL_CHANGED = "tool.changed"
TOOL_ACCEPTED = "tool.accepted"
TOOL_RESTORED = "tool.restored"
RELEASE_CREATED = "release.created"
RELEASE_PROMOTED = "release.promoted"
RELEASE_ROLLED_BACK = "release.rolled_back"
UNDO_REQUESTED = "undo.requested"
UNDO_REPORTED = "undo.reported"
ACTION_ROLLED_BACK = "undo.rolled_back"
REWIND_CREATED = "rewind.created"
REWIND_APPROVED = "rewind.approved"
REWIND_PAUSED = "rewind.paused"
REWIND_RESUMED = "rewind.resumed"
REWIND_CANCELLED = "rewind.cancelled"
REWIND_DONE = "rewind.done"
ROLLOUT_STARTED = "rollout.started"
ROLLOUT_APPROVED = "rollout.approved"
ROLLOUT_ADVANCED = "rollout.advanced"
ROLLOUT_PAUSED = "rollout.paused"
ROLLOUT_RESUMED = "rollout.resumed"
ROLLOUT_ROLLED_BACK = "rollout.rolled_back"
ROLLOUT_COMPLETED = "rollout.completed"
ROLLOUT_CANCELLED = "rollout.cancelled"
INCIDENT_OPENED = "incident.opened"
INCIDENT_UPDATED = "incident.updated"
INCIDENT_NOTED = "incident.noted"

KNOWN_VERBS = sorted(
    [
        AGENT_CREATED,
        TOOL_PINNED,
        TOOL_CHANGED,
        TOOL_ACCEPTED,
        TOOL_RESTORED,
        RELEASE_CREATED,
        RELEASE_PROMOTED,
        RELEASE_ROLLED_BACK,
        UNDO_REQUESTED,
        UNDO_REPORTED,
        ACTION_ROLLED_BACK,
        REWIND_CREATED,
        REWIND_APPROVED,
        REWIND_PAUSED,
        REWIND_RESUMED,
        REWIND_CANCELLED,
        REWIND_DONE,
        ROLLOUT_STARTED,
        ROLLOUT_APPROVED,
        ROLLOUT_ADVANCED,
        ROLLOUT_PAUSED,
        ROLLOUT_RESUMED,
        ROLLOUT_ROLLED_BACK,
        ROLLOUT_COMPLETED,
        ROLLOUT_CANCELLED,
        INCIDENT_OPENED,
        INCIDENT_UPDATED,
        INCIDENT_NOTED,
        AGENT_UPDATED,
        AGENT_ACCESS_GRANTED,
        AGENT_ACCESS_REVOKED,
        TOKEN_CREATED,
        TOKEN_REVOKED,
        PERSONAL_TOKEN_CREATED,
        PERSONAL_TOKEN_REVOKED,
        GRANT_CREATED,
        GRANT_UPDATED,
        GRANT_DELETED,
        RULE_CREATED,
        RULE_UPDATED,
        RULE_DELETED,
        LIMIT_CREATED,
        LIMIT_UPDATED,
        LIMIT_DELETED,
        KILLSWITCH_ENGAGED,
        KILLSWITCH_RELEASED,
        ACTION_DECIDED,
        ACTION_REPORTED,
        ACTION_EXPIRED,
        ACTION_VOTED,
        ACTION_CANCELLED,
        ACTION_ESCALATED,
        ACTION_ACKNOWLEDGED,
        ACTION_STARTED,
        TEAM_CREATED,
        TEAM_UPDATED,
        TEAM_MEMBER_ADDED,
        USER_ACCESS_CHANGED,
        USER_CREATED,
        TEAM_REVIEWER_ADDED,
        TEAM_REVIEWER_REMOVED,
        AUDIT_EXPORTED,
        AUDIT_VERIFICATION_STARTED,
        TEAM_CHANNELS_UPDATED,
        TEAM_CHANNELS_SECRET_REGENERATED,
        NOTIFICATION_TEST_QUEUED,
        ALERT_OPENED,
        ALERT_ESCALATED,
        ALERT_ACKNOWLEDGED,
        ALERT_RESOLVED,
        AGENT_HOLD_SET,
        AGENT_HOLD_CLEARED,
        REVIEW_COMPLETED,
        AGENT_RETIRED,
        AGENT_UNOWNED_FLAGGED,
        AGENT_UNOWNED_CLEARED,
        AGENT_RETIREMENT_NOTICE_GIVEN,
        AGENT_RETIREMENT_NOTICE_WITHDRAWN,
    ]
)

# What an agent does (its traffic), as opposed to changes made to it. An agent's History
# shows changes by default; a partial index (models.AuditEvent) covers only those, so
# finding them never walks the agent's decisions. Sorted: the index's condition and the
# queries must spell it the same way for PostgreSQL to use the index.
ACTION_VERBS = tuple(
    sorted(
        [
            ACTION_DECIDED,
            ACTION_REPORTED,
            ACTION_EXPIRED,
            ACTION_VOTED,
            ACTION_CANCELLED,
            ACTION_ESCALATED,
            ACTION_ACKNOWLEDGED,
            ACTION_STARTED,
        ]
    )
)

# How a verb reads to a person, where a page says what happened in words (an incident's
# timeline): the noun and the participle as words ("killswitch.engaged" reads "Kill
# switch engaged"); a few read better said otherwise.
_NOUN_WORDS = {"killswitch": "kill switch"}
_SPOKEN = {ACTION_VOTED: "Vote"}


def spoken(verb: str) -> str:
    if verb in _SPOKEN:
        return _SPOKEN[verb]
    noun, _, participle = verb.partition(".")
    words = " ".join(part for part in (_NOUN_WORDS.get(noun, noun), participle) if part).replace(
        "_", " "
    )
    return words[:1].upper() + words[1:]


def matching(verb: str) -> list[str]:
    """The verbs a filter for ``verb`` finds: a noun ("agent", or "agent.*") finds each
    of its verbs; anything else, itself alone."""
    noun = verb.removesuffix(".*")
    family = [known for known in KNOWN_VERBS if known.startswith(f"{noun}.")]
    if family and (verb.endswith(".*") or "." not in verb):
        return family
    return [verb]
