"""PostgreSQL: a decision written by one statement, ``decision_record``.

The function's source is gateway/sql/decision_record.v5.sql (each migration that installs
it carries its own copy); its header says what it checks, in which order, and what it
reports. This module holds what Python needs to call it: the statement and the kinds of
finding in its first column, and the statement that waits for a decision that committed
without waiting for its flush to be durable (DURABLE_SQL).
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
    + ["%s"] * (len(AUDIT_COLUMNS) + 6)
)
CALL_SQL = (
    "SELECT found, limit_usage, exceeded, seen_action, seen_body_hash,"  # noqa: S608 (constants)
    f" new_id, new_seq, new_prev_hash, new_hash FROM decision_record({_PLACEHOLDERS})"
)

# After a decision_record that committed without waiting for its WAL flush
# (p_commit_async), before the answer: a transaction that writes a WAL record of its own
# (a logical message, read by nobody unless logical decoding is set up: the prefix names
# it) and commits with the session's synchronous_commit, so PostgreSQL flushes the WAL up
# to its commit record, which follows the decision's. (A transaction that only takes an
# id is not flushed at commit.) Concurrent decisions' waits share one flush
# (docs/decisions/0027-decisions-share-their-flushes.md).
DURABLE_SQL = "SELECT pg_logical_emit_message(true, 'oversight.durable', '')"
