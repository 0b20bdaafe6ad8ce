"""For the migrations that rebuild ``audit_agent_change_seq`` when an action verb is added
(0007, 0008): the index over each agent's events that are not actions, built
CONCURRENTLY on PostgreSQL. Django's migration loader skips this module (its name starts
with an underscore); each migration keeps its own frozen list of verbs."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def agent_change_index(action_verbs: tuple[str, ...]) -> models.Index:
    return models.Index(
        condition=models.Q(("verb__in", action_verbs), _negated=True),
        fields=["agent_id", "-seq"],
        name="audit_agent_change_seq",
    )


def _swap(apps: Any, schema_editor: Any, old: models.Index, new: models.Index) -> None:
    """The old index is dropped first (queries meanwhile read the table's other
    indexes), then the new one built without blocking inserts."""
    model = apps.get_model("audit", "AuditEvent")
    concurrently = schema_editor.connection.vendor == "postgresql"
    if concurrently:
        schema_editor.remove_index(model, old, concurrently=True)
        schema_editor.add_index(model, new, concurrently=True)
    else:
        schema_editor.remove_index(model, old)
        schema_editor.add_index(model, new)


def index_swapped(old: models.Index, new: models.Index) -> list[Any]:
    """The operations that replace ``old`` with ``new`` (in a migration that is not
    atomic: CREATE INDEX CONCURRENTLY cannot run in a transaction)."""
    return [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="auditevent", name=old.name),
                migrations.AddIndex(model_name="auditevent", index=new),
            ],
            database_operations=[
                migrations.RunPython(
                    lambda apps, editor: _swap(apps, editor, old, new),
                    lambda apps, editor: _swap(apps, editor, new, old),
                )
            ],
        ),
    ]
