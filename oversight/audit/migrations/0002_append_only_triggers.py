"""Make the audit table append-only in PostgreSQL itself (UPDATE, DELETE, TRUNCATE refused)."""

from django.db import migrations

from oversight.audit.triggers import CREATE_SQL, DROP_SQL


def _create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_SQL, params=None)


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(_create, _drop)]
