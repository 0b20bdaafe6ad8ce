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
    ("rob", "Rob Reviewer", ["reviewer"], []),
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

# Each team's reviewers: they may view and decide the held actions of all its agents.
# Every demo hold rule can be satisfied: deploy-bot's two-person rule has two reviewers
# besides its owner.
TEAM_REVIEWERS = [
    ("payments", "rita"),
    ("support", "rita"),
    ("growth", "rob"),
    ("platform", "rita"),
    ("platform", "rob"),
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


def _reversible(undo_action: str, undo_params: dict[str, str]) -> dict[str, object]:
    """A grant's reversibility contract: undone by ``undo_action`` within a day."""
    return {
        "reversibility": "reversible",
        "undo_action": undo_action,
        "undo_params": undo_params,
        "undo_window_seconds": 24 * 3600,
    }


# Policies for the demo agents: grants (action, resource, reversibility), rules and limits.
POLICIES: dict[str, dict[str, list[dict[str, object]]]] = {
    "refund-bot": {
        "grants": [
            {
                "action": "payments.refund",
                "resource": "stripe:charge/*",
                # A refund is undone by charging the same amount again (docs/rewind.md).
                # The demo traffic names its charges in a list; the SDK's examples
                # (docs/integrations/) name one `charge`.
                **_reversible(
                    "payments.charge",
                    {
                        "charge": "has(params.charges) ? params.charges[0] : params.charge",
                        "amount": "params.amount",
                    },
                ),
            },
            # What undoes a refund (a compensation decided like any action of the agent).
            {
                "action": "payments.charge",
                "resource": "stripe:charge/*",
                "reversibility": "irreversible",
            },
            {"action": "crm.ticket.*", "resource": "crm:ticket/*", "reversibility": "irreversible"},
            # The same refunds as an MCP tool, through oversight-mcp in front of a
            # "payments" MCP server (docs/integrations/mcp.md).
            {"action": "mcp.payments.refund", "resource": "stripe:charge/*"},
        ],
        "rules": [
            {
                "name": "big refunds need a human",
                "effect": "hold",
                "action": "payments.refund",
                "condition": "params.amount > 500",
                "approvals": 1,
                "expires_in_seconds": 900,
            },
            {
                "name": "big MCP refunds need a human",
                "effect": "hold",
                "action": "mcp.payments.refund",
                "condition": "params.amount > 500",
                "approvals": 1,
                "expires_in_seconds": 900,
            },
            {
                "name": "no bulk refunds",
                "effect": "forbid",
                "action": "payments.refund",
                "condition": "has(params.charges) && size(params.charges) > 1",
            },
        ],
        "limits": [
            {
                "name": "refund volume",
                "action": "payments.refund",
                "window_seconds": 60,
                "max_count": 40,
                "sum_param": "amount",
                "max_sum": 20000,
                "on_exceed": "hold",
            },
        ],
    },
    "crm-updater": {
        "grants": [
            {
                "action": "crm.contact.update",
                "resource": "crm:contact/*",
                # Undone by writing back the fields as they were before.
                **_reversible("crm.contact.update", {"fields": "before"}),
            },
            {"action": "crm.contact.read", "resource": "crm:contact/*", "reversibility": "read"},
        ],
        "rules": [
            {
                "name": "vip contacts need a human",
                "effect": "hold",
                "action": "crm.contact.update",
                "resource": "crm:contact/vip-*",
                "approvals": 1,
                "expires_in_seconds": 600,
            },
            {
                "name": "never touch billing fields",
                "effect": "forbid",
                "action": "crm.contact.update",
                "condition": "'billing_email' in params",
            },
        ],
        "limits": [
            {
                "name": "contact edits",
                "action": "crm.contact.update",
                "window_seconds": 60,
                "max_count": 30,
                "on_exceed": "deny",
            },
        ],
    },
    "deploy-bot": {
        "grants": [{"action": "deploy.release", "resource": "k8s:service/*"}],  # says nothing
        "rules": [
            {
                "name": "production deploys need two people",
                "effect": "hold",
                "action": "deploy.release",
                "condition": "env == 'production'",
                "approvals": 2,
                "expires_in_seconds": 1800,
                "separation_of_duties": True,
                "approvers": "team_reviewers",
            },
            {
                "name": "no deploys of the database",
                "effect": "forbid",
                "action": "deploy.release",
                "resource": "k8s:service/postgres*",
            },
        ],
        "limits": [],
    },
    "email-campaigner": {
        "grants": [
            {"action": "email.send", "resource": "segment:*", "reversibility": "irreversible"}
        ],
        "rules": [
            {
                "name": "large sends need a human",
                "effect": "hold",
                "action": "email.send",
                "condition": "params.recipients > 5000",
                "approvals": 1,
                "expires_in_seconds": 900,
                "approvers": "team_reviewers",
            },
        ],
        "limits": [
            {
                "name": "emails per minute",
                "action": "email.send",
                "window_seconds": 60,
                "max_count": 30,
                "sum_param": "recipients",
                "max_sum": 200000,
                "on_exceed": "deny",
            },
        ],
    },
}
