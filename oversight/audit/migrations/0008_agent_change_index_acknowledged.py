"""The index of each agent's events that are not actions, again, now that an agent may
acknowledge how an action ended (``action.acknowledged`` is an action verb, so the
History's default view leaves it out with the others). Rebuilt CONCURRENTLY on
PostgreSQL, as in 0007 (_partial_index.py); both conditions are frozen here, not
imported from the model."""

from django.db import migrations

from oversight.audit.migrations._partial_index import agent_change_index, index_swapped

OLD = agent_change_index(
    (
        "action.cancelled",
        "action.decided",
        "action.escalated",
        "action.expired",
        "action.reported",
        "action.voted",
    )
)
NEW = agent_change_index(
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


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("audit", "0007_agent_change_index_escalated"),
    ]

    operations = index_swapped(OLD, NEW)
