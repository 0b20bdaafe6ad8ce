"""PostgreSQL: the limits_charge function (every limit of a decision in one statement)."""

from django.db import migrations

from oversight.policy.charge_sql import CREATE_SQL, DROP_SQL
from oversight.lib.pg_migrations import postgresql_sql


class Migration(migrations.Migration):
    dependencies = [("policy", "0001_initial")]

    operations = [postgresql_sql(CREATE_SQL, DROP_SQL)]
