"""A migration step that runs SQL on PostgreSQL only (triggers, functions)."""

from __future__ import annotations

from typing import Any

from django.db import migrations


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
