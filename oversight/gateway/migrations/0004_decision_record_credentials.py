"""PostgreSQL: decision_record checks the credentials a decision was made from.

Two arguments are added at the end (the token's hash and fingerprint), with defaults, so
calls without them still work; going back leaves this version in place.
"""

from django.conf import settings
from django.db import migrations

from oversight.gateway.record_sql import DROP_SQL, create_sql
from oversight.lib.pg_migrations import postgresql_sql


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0003_decision_record_function"),
        ("agents", "0003_monitoring_and_lifecycle_fields"),
        ("accounts", "0002_team_review_settings"),
        ("killswitch", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [postgresql_sql(DROP_SQL + "\n" + create_sql(), None)]
