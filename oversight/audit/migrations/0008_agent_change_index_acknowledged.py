"""The index of each agent's events that are not actions, again, now that an agent may
acknowledge how an action ended (``action.acknowledged`` is an action verb, so the
History's default view leaves it out with the others).

Rebuilt CONCURRENTLY on PostgreSQL, as in 0005 and 0007: the old index is dropped first
(queries meanwhile read the table's other indexes), then the new one built without
blocking inserts. Both conditions are frozen here, not imported from the model.
"""

from typing import Any

from django.db import migrations, models


def _index(action_verbs: tuple[str, ...]) -> models.Index:
    return models.Index(
        condition=models.Q(("verb__in", action_verbs), _negated=True),
        fields=["agent_id", "-seq"],
        name="audit_agent_change_seq",
    )


OLD = _index(
    (
        "action.cancelled",
        "action.decided",
        "action.escalated",
        "action.expired",
        "action.reported",
        "action.voted",
    )
)
NEW = _index(
    (
        "action.acknowledged",
        "action.cancelled",
        "action.decided",
        "action.escalated",
        "action.expired",
        "action.reported",
        "action.voted",
    )
)


def _swap(apps: Any, schema_editor: Any, old: models.Index, new: models.Index) -> None:
    model = apps.get_model("audit", "AuditEvent")
    concurrently = schema_editor.connection.vendor == "postgresql"
    if concurrently:
        schema_editor.remove_index(model, old, concurrently=True)
        schema_editor.add_index(model, new, concurrently=True)
    else:
        schema_editor.remove_index(model, old)
        schema_editor.add_index(model, new)


def forwards(apps: Any, schema_editor: Any) -> None:
    _swap(apps, schema_editor, OLD, NEW)


def backwards(apps: Any, schema_editor: Any) -> None:
    _swap(apps, schema_editor, NEW, OLD)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("audit", "0007_agent_change_index_escalated"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="auditevent", name="audit_agent_change_seq"),
                migrations.AddIndex(model_name="auditevent", index=NEW),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
