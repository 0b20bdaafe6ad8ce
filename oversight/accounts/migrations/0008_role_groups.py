"""The role groups (admin, owner, reviewer, auditor) exist from the first migration on, so
the first admin gives people their roles in the admin site without making groups by
hand and spelling them exactly (docs/deploy.md, "First user")."""

from django.db import migrations

ROLES = ("admin", "owner", "reviewer", "auditor")  # accounts/roles.py, as of this migration


def create_role_groups(apps, schema_editor):
    groups = apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias)
    for name in ROLES:
        groups.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_provenance"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
