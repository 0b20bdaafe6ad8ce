"""Django's flush, taught that the audit table is append-only.

The database trigger refuses TRUNCATE of the audit log. Only where
AUDIT_FLUSH_ALLOWED is on (the test suite, which flushes between
transactional tests) is the trigger switched off for the flush's own
transaction; everywhere else flush fails with the trigger's message.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.commands.flush import Command as DjangoFlush
from django.db import connections, transaction

from oversight.audit.triggers import IMMUTABLE_TRIGGERS, TABLE


class Command(DjangoFlush):
    def handle(self, **options: Any) -> None:
        connection = connections[options["database"]]
        if not (settings.AUDIT_FLUSH_ALLOWED and connection.vendor == "postgresql"):
            return super().handle(**options)
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                for name in IMMUTABLE_TRIGGERS:
                    cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {name}")
            super().handle(**options)
            with connection.cursor() as cursor:
                for name in IMMUTABLE_TRIGGERS:
                    cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {name}")
        return None
