from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "oversight.live"
    label = "live"
