# Alerts of a new kind: approved actions started and never reported (choices only).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='alert',
            name='kind',
            field=models.CharField(choices=[('volume', 'Volume far above baseline'), ('error_rate', 'Error-rate spike'), ('denial_rate', 'Denial spike'), ('new_resource', 'New resource family'), ('off_hours', 'Activity outside usual hours'), ('unreported', 'Started, outcome not reported')], max_length=20),
        ),
    ]
