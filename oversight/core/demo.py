"""The demo organisation created by `manage.py seed_demo`."""

from __future__ import annotations

DEMO_PASSWORD_SUFFIX = "-demo-2026"  # noqa: S105 - demo data, printed on purpose

# username, full name, roles, teams
USERS = [
    ("admin", "Ada Admin", ["admin"], []),
    ("alice", "Alice Owner", ["owner"], ["payments"]),
    ("bob", "Bob Owner", ["owner"], ["support"]),
    ("gina", "Gina Owner", ["owner"], ["growth"]),
    ("pat", "Pat Owner", ["owner"], ["platform"]),
    ("carol", "Carol Teammate", [], ["payments"]),
    ("rita", "Rita Reviewer", ["reviewer"], []),
    ("aaron", "Aaron Auditor", ["auditor"], []),
]

TEAMS = [
    ("payments", "Refunds, invoices and disputes."),
    ("support", "Customer support and CRM."),
    ("growth", "Marketing email and lead data."),
    ("platform", "Deploys and incident tooling."),
]

# slug, name, team, owner, purpose, environments, risk tier, review interval (days)
AGENTS = [
    (
        "refund-bot",
        "Refund bot",
        "payments",
        "alice",
        "Issues refunds for support tickets.",
        ["staging", "production"],
        "high",
        90,
    ),
    (
        "invoice-reconciler",
        "Invoice reconciler",
        "payments",
        "alice",
        "Matches incoming payments to open invoices.",
        ["production"],
        "medium",
        90,
    ),
    (
        "chargeback-responder",
        "Chargeback responder",
        "payments",
        "alice",
        "Drafts and submits evidence for card disputes.",
        ["staging"],
        "high",
        60,
    ),
    (
        "ticket-triage",
        "Ticket triage",
        "support",
        "bob",
        "Labels and routes new support tickets.",
        ["staging", "production"],
        "low",
        180,
    ),
    (
        "crm-updater",
        "CRM updater",
        "support",
        "bob",
        "Keeps CRM contact records in step with ticket conversations.",
        ["production"],
        "medium",
        90,
    ),
    (
        "reply-drafter",
        "Reply drafter",
        "support",
        "bob",
        "Drafts first replies to customers for an agent to send.",
        ["staging", "production"],
        "medium",
        90,
    ),
    (
        "email-campaigner",
        "Email campaigner",
        "growth",
        "gina",
        "Sends approved marketing emails to opted-in segments.",
        ["production"],
        "high",
        60,
    ),
    (
        "lead-enricher",
        "Lead enricher",
        "growth",
        "gina",
        "Adds firmographic data to new leads.",
        ["staging", "production"],
        "low",
        180,
    ),
    (
        "deploy-bot",
        "Deploy bot",
        "platform",
        "pat",
        "Rolls out reviewed releases to production.",
        ["staging", "production"],
        "critical",
        30,
    ),
    (
        "incident-summarizer",
        "Incident summarizer",
        "platform",
        "pat",
        "Writes incident timelines from alerts and chat.",
        ["production"],
        "low",
        180,
    ),
]

# who is granted what on which team's agents: username, access level, team
GRANTS = [
    ("rita", "reviewer", "payments"),
    ("rita", "reviewer", "support"),
    ("aaron", "viewer", "payments"),
    ("aaron", "viewer", "support"),
    ("aaron", "viewer", "growth"),
    ("aaron", "viewer", "platform"),
]
