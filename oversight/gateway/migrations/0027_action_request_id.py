# The request id of the ask that recorded an action (gateway.models.Action.request_id),
# answered with a replay of its Idempotency-Key. A constant default: adding the column
# rewrites no row (PostgreSQL 11 and later).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0026_action_resource_params"),
    ]

    operations = [
        migrations.AddField(
            model_name="action",
            name="request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
