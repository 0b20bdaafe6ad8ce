from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "oversight.core"
    label = "core"

    def ready(self) -> None:
        from oversight.core import checks  # noqa: F401  (register deploy checks)
