"""PostgreSQL: a trigger that refuses an audit row which does not follow the chain's head
or does not hash to its hash (audit/sql/audit_insert_check.v1.sql): only rows as
audit_append writes them are appended, whoever connects."""

from pathlib import Path

from django.db import migrations

from oversight.lib.pg_migrations import postgresql_sql

# Version 1 of the source, never edited: a change comes as v2, with a migration of its own.
CREATE_SQL = (Path(__file__).resolve().parents[1] / "sql" / "audit_insert_check.v1.sql").read_text()
DROP_SQL = """
DROP TRIGGER IF EXISTS audit_check_insert ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_check_insert;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0009_agent_change_index_started")]

    operations = [postgresql_sql(CREATE_SQL, DROP_SQL)]
