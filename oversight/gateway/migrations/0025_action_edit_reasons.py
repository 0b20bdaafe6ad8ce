# The reasons a held action's edited params got when decided again (approvals/edits.py),
# shown beside the action's own. Nullable with no default, so adding the column rewrites
# nothing; a decision never writes it.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0024_action_allowed_unreported"),
    ]

    operations = [
        migrations.AddField(
            model_name="action",
            name="edit_reasons",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
