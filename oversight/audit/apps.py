from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "oversight.audit"
    label = "audit"

    def ready(self) -> None:
        from oversight.audit import checks, key_checks  # noqa: F401  (register deploy checks)
        from oversight.audit.db_roles import grants_after_migrate

        post_migrate.connect(grants_after_migrate, sender=self)
