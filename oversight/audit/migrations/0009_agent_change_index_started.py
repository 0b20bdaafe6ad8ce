"""The index of each agent's events that are not actions, again, now that an agent claims
the run of an approved action (``action.started`` is an action verb, so the History's
default view leaves it out with the others). Rebuilt CONCURRENTLY on PostgreSQL, as in
0007 and 0008 (``index_replaced``); both conditions are frozen here, not imported from the
model."""

from django.db import migrations, models

from oversight.lib.pg_migrations import index_replaced


def agent_change_index(action_verbs: tuple[str, ...]) -> models.Index:
    return models.Index(
        condition=models.Q(("verb__in", action_verbs), _negated=True),
        fields=["agent_id", "-seq"],
        name="audit_agent_change_seq",
    )


OLD = agent_change_index(
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
NEW = agent_change_index(
    (
        "action.acknowledged",
        "action.cancelled",
        "action.decided",
        "action.escalated",
        "action.expired",
        "action.reported",
        "action.started",
        "action.voted",
    )
)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("audit", "0008_agent_change_index_acknowledged"),
    ]

    operations = [index_replaced("audit", "AuditEvent", OLD, NEW)]
