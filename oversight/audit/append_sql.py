"""PostgreSQL: append an audit event in one statement, the chain head read under the lock.

``audit_append`` builds the canonical JSON its hash covers from the event's columns (as
``verifier.canonical_json`` does), takes the append lock (transaction-scoped, so
appenders queue until the caller's transaction ends and the chain cannot fork), reads the
head, and inserts the row with the hash ``chain.compute_hash`` gives, so ``manage.py
audit_verify`` checks these rows like any other. In READ COMMITTED each statement of a
volatile function takes a fresh snapshot, so the head is read as it is once the lock is
granted. It runs as its owner, and is the only way the runtime role appends: that role
may not INSERT into the table (db_roles.py), so it cannot write a row that does not hash
to its columns or does not follow the head (docs/decisions/0033).

The function's source is audit/sql/audit_append.v3.sql (each migration that installs it
carries its own copy); this module holds what Python needs to call it.
"""

from __future__ import annotations

from oversight.audit.chain import HASHED_FIELDS

# Arbitrary but fixed key for pg_advisory_xact_lock: "serialise audit appends" (the SQL
# source has it literally).
APPEND_LOCK_KEY = 0x0A5D17

# The columns the caller passes: every hashed field but the chain's own two.
COLUMNS = tuple(field for field in HASHED_FIELDS if field not in ("seq", "prev_hash"))

# One call; the caller passes the columns in COLUMNS order.
_PLACEHOLDERS = ", ".join(["%s"] * len(COLUMNS))
CALL_SQL = f"SELECT new_id, new_seq, new_prev_hash, new_hash FROM audit_append({_PLACEHOLDERS})"  # noqa: S608
