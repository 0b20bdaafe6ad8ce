"""PostgreSQL triggers that make the audit table append-only below the ORM.

Their source is audit/sql/audit_append_only.v1.sql (installed by audit migration 0002,
which carries its own copy); this module names them for the commands that lift them.
"""

from __future__ import annotations

TABLE = "audit_auditevent"
IMMUTABLE_TRIGGERS = ("audit_no_update_delete", "audit_no_truncate")
