"""PostgreSQL: the audit_append function (one round trip per appended event)."""

from django.db import migrations

from oversight.audit.append_sql import CREATE_SQL, DROP_SQL


def _create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_SQL, params=None)


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]

    operations = [migrations.RunPython(_create, _drop)]
