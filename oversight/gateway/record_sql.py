"""PostgreSQL: a decision written by one statement, ``CALL decision_record(...)``.

The procedure's source is gateway/sql/decision_record.v7.sql (each migration that
installs it carries its own copy); its header says what it checks, in which order, what
it reports, and how a decision that is its own transaction is durable before the CALL
returns. This module holds what Python needs to call it.
"""

from __future__ import annotations

from oversight.audit.append_sql import COLUMNS as AUDIT_COLUMNS

# The advisory lock that orders decisions and kill-switch presses (shared by decisions,
# exclusive for a press). The SQL source has it literally.
SWITCH_LOCK_KEY = 4919061

_PLACEHOLDERS = ", ".join(
    [
        "%s::jsonb",
        "%s",
        "%s",
        "%s::bigint[]",
        "%s::timestamptz[]",
        "%s::numeric[]",
        "%s::bigint[]",
        "%s::numeric[]",
        "%s::text[]",
    ]
    + ["%s"] * (len(AUDIT_COLUMNS) + 3)
)
# The procedure's OUT parameters are passed as NULL and come back as the one row:
# found, limit_usage, exceeded, seen_action, seen_body_hash, new_id, new_seq,
# new_prev_hash, new_hash, durable_lsn.
CALL_SQL = f"CALL decision_record({_PLACEHOLDERS}{', NULL' * 10})"
