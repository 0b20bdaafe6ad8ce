"""PostgreSQL triggers that make the audit table append-only below the ORM.

Their source is audit/sql/audit_append_only.v1.sql (installed by audit migration 0002,
which carries its own copy), and audit/sql/audit_insert_check.v1.sql (migration 0010):
a row appended other than as ``audit_append`` writes it is refused. This module names
them for what lifts them (the tests that play an attacker with the owner's rights).
"""

from __future__ import annotations

TABLE = "audit_auditevent"
IMMUTABLE_TRIGGERS = ("audit_no_update_delete", "audit_no_truncate")
INSERT_CHECK_TRIGGER = "audit_check_insert"
