"""PostgreSQL: limits_charge again, in PL/pgSQL so that its plan is kept (charge_sql.py).

Same signature and behaviour; going back leaves this version in place.
"""

from django.db import migrations

from oversight.lib.pg_migrations import postgresql_sql
from oversight.policy.charge_sql import CREATE_SQL


class Migration(migrations.Migration):
    dependencies = [("policy", "0002_limits_charge_function")]

    operations = [postgresql_sql(CREATE_SQL, None)]
