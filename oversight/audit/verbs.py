"""Every audit verb, in one place. Verbs are `<noun>.<past participle>`."""

from __future__ import annotations

AGENT_CREATED = "agent.created"
AGENT_UPDATED = "agent.updated"
AGENT_ACCESS_GRANTED = "agent.access_granted"
AGENT_ACCESS_REVOKED = "agent.access_revoked"
TEAM_CREATED = "team.created"
TEAM_UPDATED = "team.updated"
TEAM_MEMBER_ADDED = "team.member_added"
AUDIT_EXPORTED = "audit.exported"

KNOWN_VERBS = sorted(
    [
        AGENT_CREATED,
        AGENT_UPDATED,
        AGENT_ACCESS_GRANTED,
        AGENT_ACCESS_REVOKED,
        TEAM_CREATED,
        TEAM_UPDATED,
        TEAM_MEMBER_ADDED,
        AUDIT_EXPORTED,
    ]
)
