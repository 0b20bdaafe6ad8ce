"""An index of events by their target, for an object's story (an action's page reads its
events by ``target_type`` and ``target_id``): without it, a scan of the whole log per
page. Built CONCURRENTLY on PostgreSQL (``index_added``), so decisions go on meanwhile."""

from django.db import migrations, models

from oversight.lib.pg_migrations import index_added


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("audit", "0009_agent_change_index_started"),
    ]

    operations = [
        index_added(
            "audit",
            "AuditEvent",
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        )
    ]
