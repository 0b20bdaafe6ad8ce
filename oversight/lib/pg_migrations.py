"""Migration steps for PostgreSQL: SQL run there only (triggers, functions), and an index
replaced without blocking writes. The one module of the code that migrations import."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def postgresql_sql(create_sql: str, drop_sql: str | None) -> migrations.RunPython:
    """Run ``create_sql`` forwards and ``drop_sql`` backwards (None: nothing to undo);
    nothing on other databases, where the application does the same work in Python."""

    def run(sql: str) -> Any:
        def step(apps: Any, schema_editor: Any) -> None:
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql, params=None)

        return step

    backwards = migrations.RunPython.noop if drop_sql is None else run(drop_sql)
    return migrations.RunPython(run(create_sql), backwards)


def index_added(
    app_label: str, model_name: str, index: models.Index
) -> migrations.SeparateDatabaseAndState:
    """Add ``index``; on PostgreSQL CONCURRENTLY, so that a large table's inserts go on
    while it is built. The migration must not be atomic."""

    def change(apps: Any, schema_editor: Any, *, add: bool) -> None:
        model = apps.get_model(app_label, model_name)
        options = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
        if add:
            schema_editor.add_index(model, index, **options)
        else:
            schema_editor.remove_index(model, index, **options)

    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AddIndex(model_name=model_name.lower(), index=index)],
        database_operations=[
            migrations.RunPython(
                lambda apps, editor: change(apps, editor, add=True),
                lambda apps, editor: change(apps, editor, add=False),
            )
        ],
    )


def index_replaced(
    app_label: str, model_name: str, old: models.Index, new: models.Index
) -> migrations.SeparateDatabaseAndState:
    """Replace ``old`` by ``new``; on PostgreSQL CONCURRENTLY: the old index is dropped
    first (queries meanwhile read the table's other indexes), then the new one built
    without blocking inserts. The migration must not be atomic (CREATE INDEX
    CONCURRENTLY cannot run in a transaction)."""

    def swap(apps: Any, schema_editor: Any, drop: models.Index, build: models.Index) -> None:
        model = apps.get_model(app_label, model_name)
        # Only PostgreSQL's schema editor takes ``concurrently``.
        options = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
        schema_editor.remove_index(model, drop, **options)
        schema_editor.add_index(model, build, **options)

    return migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.RemoveIndex(model_name=model_name.lower(), name=old.name),
            migrations.AddIndex(model_name=model_name.lower(), index=new),
        ],
        database_operations=[
            migrations.RunPython(
                lambda apps, editor: swap(apps, editor, old, new),
                lambda apps, editor: swap(apps, editor, new, old),
            )
        ],
    )
