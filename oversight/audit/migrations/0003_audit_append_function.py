"""PostgreSQL: the audit_append function (one round trip per appended event)."""

from django.db import migrations

from oversight.audit.append_sql import CREATE_SQL, DROP_SQL
from oversight.lib.pg_migrations import postgresql_sql


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]

    operations = [postgresql_sql(CREATE_SQL, DROP_SQL)]
