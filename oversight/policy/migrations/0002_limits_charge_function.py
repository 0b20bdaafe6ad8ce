"""PostgreSQL: the limits_charge function (every limit of a decision in one statement)."""

from django.db import migrations

from oversight.policy.charge_sql import CREATE_SQL, DROP_SQL


def _create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_SQL, params=None)


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("policy", "0001_initial")]

    operations = [migrations.RunPython(_create, _drop)]
