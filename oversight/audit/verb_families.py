"""Families of audit verbs, for filtering an agent's History: what was changed about the
agent (itself, its policy, its kill switch, its tokens, its alerts) and what it did."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oversight.audit import verbs


@dataclass(frozen=True)
class Family:
    key: str
    label: str
    verbs: tuple[str, ...]


AGENT = Family(
    "agent",
    "The agent, its owner and access",
    (
        verbs.AGENT_CREATED,
        verbs.AGENT_UPDATED,
        verbs.AGENT_ACCESS_GRANTED,
        verbs.AGENT_ACCESS_REVOKED,
        verbs.AGENT_UNOWNED_FLAGGED,
        verbs.AGENT_UNOWNED_CLEARED,
        verbs.REVIEW_COMPLETED,
        verbs.AGENT_RETIREMENT_NOTICE_GIVEN,
        verbs.AGENT_RETIREMENT_NOTICE_WITHDRAWN,
        verbs.AGENT_RETIRED,
        verbs.TOOL_PINNED,
        verbs.TOOL_CHANGED,
        verbs.TOOL_ACCEPTED,
        verbs.TOOL_RESTORED,
    ),
)
POLICY = Family(
    "policy",
    "Policy: grants, rules, limits and releases",
    (
        verbs.GRANT_CREATED,
        verbs.GRANT_UPDATED,
        verbs.GRANT_DELETED,
        verbs.RULE_CREATED,
        verbs.RULE_UPDATED,
        verbs.RULE_DELETED,
        verbs.LIMIT_CREATED,
        verbs.LIMIT_UPDATED,
        verbs.LIMIT_DELETED,
        verbs.RELEASE_CREATED,
        verbs.RELEASE_PROMOTED,
        verbs.RELEASE_ROLLED_BACK,
        verbs.ROLLOUT_STARTED,
        verbs.ROLLOUT_APPROVED,
        verbs.ROLLOUT_ADVANCED,
        verbs.ROLLOUT_PAUSED,
        verbs.ROLLOUT_RESUMED,
        verbs.ROLLOUT_ROLLED_BACK,
        verbs.ROLLOUT_COMPLETED,
        verbs.ROLLOUT_CANCELLED,
    ),
)
KILL_SWITCH = Family(
    "killswitch", "Kill switch", (verbs.KILLSWITCH_ENGAGED, verbs.KILLSWITCH_RELEASED)
)
TOKENS = Family("tokens", "Tokens", (verbs.TOKEN_CREATED, verbs.TOKEN_REVOKED))
ALERTS = Family(
    "alerts",
    "Alerts and automatic holds",
    (
        verbs.ALERT_OPENED,
        verbs.ALERT_ESCALATED,
        verbs.ALERT_ACKNOWLEDGED,
        verbs.ALERT_RESOLVED,
        verbs.AGENT_HOLD_SET,
        verbs.AGENT_HOLD_CLEARED,
    ),
)
REWIND = Family(
    "rewind",
    "Undo and rewind",
    (
        verbs.UNDO_REQUESTED,
        verbs.UNDO_REPORTED,
        verbs.ACTION_ROLLED_BACK,
        verbs.REWIND_CREATED,
        verbs.REWIND_APPROVED,
        verbs.REWIND_PAUSED,
        verbs.REWIND_RESUMED,
        verbs.REWIND_CANCELLED,
        verbs.REWIND_DONE,
    ),
)
INCIDENTS = Family(
    "incidents",
    "Incidents",
    (verbs.INCIDENT_OPENED, verbs.INCIDENT_UPDATED, verbs.INCIDENT_NOTED),
)
ACTIONS = Family("actions", "Actions: decisions, votes and results", verbs.ACTION_VERBS)

CHANGE_FAMILIES = (AGENT, POLICY, KILL_SWITCH, TOKENS, ALERTS, REWIND, INCIDENTS)
FAMILIES = {family.key: family for family in (*CHANGE_FAMILIES, ACTIONS)}

# Verbs never recorded against an agent (teams, the audit log itself, notifications).
NOT_ABOUT_AN_AGENT = (
    verbs.TEAM_CREATED,
    verbs.TEAM_UPDATED,
    verbs.TEAM_MEMBER_ADDED,
    verbs.USER_ACCESS_CHANGED,
    verbs.USER_CREATED,
    verbs.TEAM_REVIEWER_ADDED,
    verbs.TEAM_REVIEWER_REMOVED,
    verbs.TEAM_CHANNELS_UPDATED,
    verbs.TEAM_CHANNELS_SECRET_REGENERATED,
    verbs.NOTIFICATION_TEST_QUEUED,
    verbs.AUDIT_EXPORTED,
    verbs.AUDIT_VERIFICATION_STARTED,
    verbs.PERSONAL_TOKEN_CREATED,
    verbs.PERSONAL_TOKEN_REVOKED,
)

# What the History shows: changes (everything but actions, the default), one family of
# changes, actions, or everything. Grouped choices: the families render as an optgroup.
CHANGES = "changes"
EVERYTHING = "all"
HISTORY_CHOICES: list[tuple[str, Any]] = [
    (CHANGES, "All changes"),
    ("Changes to", [(family.key, family.label) for family in CHANGE_FAMILIES]),
    (ACTIONS.key, ACTIONS.label),
    (EVERYTHING, "Everything"),
]
HISTORY_KEYS = frozenset({CHANGES, EVERYTHING, *FAMILIES})
