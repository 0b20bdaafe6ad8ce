# What cleared an alert monitoring resolved itself. Before, an alert with no one in
# resolved_by read "by monitoring", and so did one resolved by a person whose account was
# deleted since. Alerts resolved before this migration take their words from the audit
# log's alert.resolved event: monitoring's "why", or nothing when a person resolved it.

from django.db import migrations, models

MONITORING = "system:monitoring"


def resolved_why_from_the_log(apps, schema_editor):
    db = schema_editor.connection.alias  # the migrating connection (the owner's)
    alerts = apps.get_model("monitoring", "Alert").objects.using(db)
    events = apps.get_model("audit", "AuditEvent").objects.using(db)
    unnamed = alerts.filter(status="resolved", resolved_by__isnull=True)
    for alert_id in list(unnamed.values_list("pk", flat=True)):
        event = (
            events.filter(
                target_type="monitoring.alert", target_id=str(alert_id), verb="alert.resolved"
            )
            .order_by("-seq")
            .values("actor_label", "after")
            .first()
        )
        if event is None or event["actor_label"] != MONITORING:
            continue
        after = event["after"] if isinstance(event["after"], dict) else {}
        why = str(after.get("why") or "its condition cleared")[:200]
        alerts.filter(pk=alert_id).update(resolved_why=why)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0010_target_index"),
        ("monitoring", "0002_alert_kind_unreported"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="resolved_why",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(resolved_why_from_the_log, migrations.RunPython.noop),
    ]
