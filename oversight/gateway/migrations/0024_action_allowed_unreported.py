# A partial index of allowed actions whose agent said it reports them and has not yet:
# few, and looked for by monitoring every minute (monitoring/unreported.py). Built
# CONCURRENTLY on PostgreSQL, so decisions go on being recorded meanwhile.

from django.db import migrations, models

INDEX = "action_allowed_unreported"


def _concurrently(schema_editor):
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def build(apps, schema_editor):
    schema_editor.execute(
        f"CREATE INDEX{_concurrently(schema_editor)} IF NOT EXISTS {INDEX} "
        "ON gateway_action (created_at) WHERE status = 'allowed' AND reports_outcome"
    )


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX{_concurrently(schema_editor)} IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("gateway", "0023_action_reports_outcome"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="action",
                    index=models.Index(
                        condition=models.Q(("reports_outcome", True), ("status", "allowed")),
                        fields=["created_at"],
                        name="action_allowed_unreported",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(build, drop)],
        ),
    ]
