"""An index of each agent's events that are not actions (its History's default view).

On PostgreSQL it is built CONCURRENTLY: a plain CREATE INDEX would block every insert
into the audit log, and so every decision, for as long as the build of a long log takes.
The index (its condition included) is frozen here, not imported from the model.
"""

from typing import Any

from django.db import migrations, models

INDEX = models.Index(
    condition=models.Q(
        (
            "verb__in",
            (
                "action.cancelled",
                "action.decided",
                "action.expired",
                "action.reported",
                "action.voted",
            ),
        ),
        _negated=True,
    ),
    fields=["agent_id", "-seq"],
    name="audit_agent_change_seq",
)


def add_index(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("audit", "AuditEvent")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(model, INDEX, concurrently=True)
    else:
        schema_editor.add_index(model, INDEX)


def remove_index(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("audit", "AuditEvent")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(model, INDEX, concurrently=True)
    else:
        schema_editor.remove_index(model, INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("audit", "0004_checkpoints"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="auditevent", index=INDEX)],
            database_operations=[migrations.RunPython(add_index, remove_index)],
        ),
    ]
