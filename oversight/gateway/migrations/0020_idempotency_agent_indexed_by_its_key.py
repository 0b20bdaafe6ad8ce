# The key's own index on agent_id is dropped: idempotency_unique (agent_id, key) serves
# every lookup by agent, and each decision with a key paid for maintaining both. Dropped
# CONCURRENTLY on PostgreSQL, so decisions go on writing keys meanwhile (Django's own
# AlterField would drop and re-add the foreign key, locking and scanning the table).

import django.db.models.deletion
from django.db import migrations, models

INDEX = "gateway_idempotencykey_agent_id_400ce431"


def _concurrently(schema_editor):
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX{_concurrently(schema_editor)} IF EXISTS {INDEX}")


def build(apps, schema_editor):
    schema_editor.execute(
        f"CREATE INDEX{_concurrently(schema_editor)} IF NOT EXISTS {INDEX} "
        "ON gateway_idempotencykey (agent_id)"
    )


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('agents', '0008_compensation_webhook'),
        ('gateway', '0019_action_acknowledged_at'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='idempotencykey',
                    name='agent',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='agents.agent'),
                ),
            ],
            database_operations=[migrations.RunPython(drop, build)],
        ),
    ]
