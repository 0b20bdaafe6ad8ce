"""The tables that hold audit history: read and added to, never changed.

This list decides the runtime database role's privileges (oversight/audit/db_roles.py):
on these tables it may only SELECT and INSERT (only SELECT on those in
APPENDED_THROUGH_FUNCTION), on every other table SELECT, INSERT, UPDATE and DELETE. A
table of history (events, checkpoints...) belongs here from the migration that creates
it: the grants that follow every migrate then keep the runtime role from changing it,
the deploy check watches it, and `flush` in the test suite lifts its triggers.
"""

from __future__ import annotations

APPEND_ONLY_TABLES: tuple[str, ...] = (
    "audit_auditevent",
    "audit_auditcheckpoint",  # what each checkpoint signed; deliveries and runs change
    "audit_merklenode",
)

# Append-only tables whose rows the runtime role adds only through a function that runs as
# the owner and builds what the row must hold (audit_append: the event's hash from its
# columns, after the chain's head): the runtime role may not INSERT into them itself.
APPENDED_THROUGH_FUNCTION: dict[str, str] = {"audit_auditevent": "audit_append"}
