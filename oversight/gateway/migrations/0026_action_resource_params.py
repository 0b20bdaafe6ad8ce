# The params an agent said its action's resource is made of (gateway.models.Action), which
# a reviewer may not edit. Nullable with no default, so adding the column rewrites nothing.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0025_action_edit_reasons"),
    ]

    operations = [
        migrations.AddField(
            model_name="action",
            name="resource_params",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
