# A partial index of approved actions the agent started (and so has not reported): few,
# and looked for by monitoring every minute (monitoring/unreported.py). Built
# CONCURRENTLY on PostgreSQL, so decisions go on being recorded meanwhile.

from django.db import migrations, models

INDEX = "action_started_unreported"


def _concurrently(schema_editor):
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def build(apps, schema_editor):
    schema_editor.execute(
        f"CREATE INDEX{_concurrently(schema_editor)} IF NOT EXISTS {INDEX} "
        "ON gateway_action (started_at) WHERE status = 'approved' AND started_at IS NOT NULL"
    )


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX{_concurrently(schema_editor)} IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('gateway', '0021_action_started_at'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name='action',
                    index=models.Index(condition=models.Q(('started_at__isnull', False), ('status', 'approved')), fields=['started_at'], name='action_started_unreported'),
                ),
            ],
            database_operations=[migrations.RunPython(build, drop)],
        ),
    ]
