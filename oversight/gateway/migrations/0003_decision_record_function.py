"""PostgreSQL: the decision_record function (a new decision written by one statement)."""

from django.db import migrations

from oversight.gateway.record_sql import CREATE_SQL, DROP_SQL


def _create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_SQL, params=None)


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0002_action_decision"),
        ("audit", "0003_audit_append_function"),
        ("policy", "0002_limits_charge_function"),
    ]

    operations = [migrations.RunPython(_create, _drop)]
