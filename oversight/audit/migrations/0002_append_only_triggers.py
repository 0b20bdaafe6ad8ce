"""Make the audit table append-only in PostgreSQL itself (UPDATE, DELETE, TRUNCATE refused)."""

from django.db import migrations

from oversight.audit.triggers import CREATE_SQL, DROP_SQL
from oversight.lib.pg_migrations import postgresql_sql


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [postgresql_sql(CREATE_SQL, DROP_SQL)]
