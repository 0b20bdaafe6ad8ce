# Whether the agent said it reports the action's outcome (gateway.models.Action). A
# default in the database too, so adding the column rewrites nothing.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0022_action_started_unreported"),
    ]

    operations = [
        migrations.AddField(
            model_name="action",
            name="reports_outcome",
            field=models.BooleanField(db_default=False, default=False),
        ),
    ]
