"""PostgreSQL: the decision_record function (a new decision written by one statement)."""

from django.db import migrations

from oversight.gateway.record_sql import DROP_SQL, create_sql
from oversight.lib.pg_migrations import postgresql_sql


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0002_action_decision"),
        ("audit", "0003_audit_append_function"),
        ("policy", "0002_limits_charge_function"),
    ]

    operations = [postgresql_sql(create_sql(), DROP_SQL)]
